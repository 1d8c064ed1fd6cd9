// A charging station built on ocpp-rpc in strict mode, driven line by line over stdin/stdout.
//
// argv[2] is a JSON object: {url, identity, password, protocol, answers}. The station connects
// with HTTP Basic auth and validates every frame both ways against the protocol's official
// schemas (ocpp-rpc's strict mode). It prints one JSON object per line:
//   {"type":"connected","protocol":...}
//   {"type":"inbound","method":...,"params":...}       a CSMS-initiated call, answered from
//                                                        `answers` (NotImplemented if absent)
//   {"type":"result","id":...,"result":...}             the answer to a call asked on stdin
//   {"type":"error","id":...,"code":...,"message":...}  a CALLERROR (or a refused own call)
//   {"type":"violation",...}                            a strict-mode schema failure, either way
//   {"type":"bad",...}                                  a frame that is no OCPP-J message
//   {"type":"closed","code":...}
// Each stdin line is {"id":N,"method":"...","params":{...}} or {"close":true}.
'use strict';

const readline = require('node:readline');
const { RPCClient, createRPCError } = require('ocpp-rpc');

const options = JSON.parse(process.argv[2]);

function emit(record) {
    process.stdout.write(JSON.stringify(record) + '\n');
}

const client = new RPCClient({
    endpoint: options.url,
    identity: options.identity,
    password: options.password,
    protocols: [options.protocol],
    strictMode: true,
    reconnect: false,
    callTimeoutMs: 10000,
    respondWithDetailedErrors: false,
});

client.on('strictValidationFailure', (event) => {
    emit({
        type: 'violation',
        method: event.method,
        outbound: event.outbound,
        isCall: event.isCall,
        error: String(event.error && event.error.message),
        params: event.params,
        result: event.result,
    });
});

client.on('badMessage', (event) => {
    emit({ type: 'bad', message: String(event.buffer), error: String(event.error) });
});

client.on('close', (event) => {
    emit({ type: 'closed', code: event.code, reason: String(event.reason || '') });
    process.exit(0);
});

client.handle(({ method, params }) => {
    emit({ type: 'inbound', method, params });
    const answer = (options.answers || {})[method];
    if (answer === undefined) {
        throw createRPCError('NotImplemented', `${method} is not implemented by this peer`);
    }
    return answer;
});

async function main() {
    await client.connect();
    emit({ type: 'connected', protocol: client.protocol });
    const lines = readline.createInterface({ input: process.stdin });
    for await (const line of lines) {
        if (!line.trim()) continue;
        const command = JSON.parse(line);
        if (command.close) {
            await client.close({ code: 1000, awaitPending: true });
            return;
        }
        try {
            const result = await client.call(command.method, command.params);
            emit({ type: 'result', id: command.id, method: command.method, result });
        } catch (error) {
            emit({
                type: 'error',
                id: command.id,
                method: command.method,
                code: error.rpcErrorCode || error.name,
                message: String(error.message),
            });
        }
    }
    await client.close({ code: 1000 });
}

main().catch((error) => {
    emit({ type: 'fatal', error: String(error && error.stack ? error.stack : error) });
    process.exit(2);
});

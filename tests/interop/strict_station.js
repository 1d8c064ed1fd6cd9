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
const { RPCClient, createRPCError, createValidator } = require('ocpp-rpc');

const options = JSON.parse(process.argv[2]);

// ocpp-rpc 2.2.1 ships the official OCPP 2.1 schemas under the ids the OCA publishes
// (urn:BootNotificationRequest) but looks them up as urn:BootNotification.req, so its own 2.1
// strict mode fails every message as "schema missing". The same schema files, under the ids
// it looks up, make a 2.1 validator that checks what the official schemas say. (Their enum
// definitions also carry "additionalProperties", which means nothing for a string and only
// makes ajv print a warning per enum: it is left out.)
function withoutStringNoise(node) {
    if (Array.isArray(node)) return node.map(withoutStringNoise);
    if (node === null || typeof node !== 'object') return node;
    const copy = {};
    for (const [key, value] of Object.entries(node)) {
        if (key === 'additionalProperties' && node.type && node.type !== 'object') continue;
        copy[key] = withoutStringNoise(value);
    }
    return copy;
}

function ocpp21Validator() {
    const schemas = require('ocpp-rpc/lib/schemas/ocpp2_1.json').map((schema) => ({
        ...withoutStringNoise(schema),
        $id: schema.$id.replace(/Request$/, '.req').replace(/Response$/, '.conf'),
    }));
    return createValidator('ocpp2.1', schemas);
}

function emit(record) {
    process.stdout.write(JSON.stringify(record) + '\n');
}

const client = new RPCClient({
    endpoint: options.url,
    identity: options.identity,
    password: options.password,
    protocols: [options.protocol],
    strictMode: true,
    strictModeValidators: options.protocol === 'ocpp2.1' ? [ocpp21Validator()] : [],
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

"""A stranger flooding validators with forged votes, as its own process.

``python -m tests.ledger.consensus.flood --chain-id C --claim A --seconds S --rate R URL...``
connects to each URL as a client (the only role a stranger can take), asks its height, and
sends about ``R`` prevotes a second for the height being decided, each claiming to come from
the validator ``--claim`` and signed by a key of its own. Prints ``flooding`` once connected,
then the number of frames sent.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os

from websockets.asyncio.client import connect

from ledger.consensus.handshake import Role
from ledger.consensus.peers import greet
from ledger.consensus.wire import GetStatus, Status, dump, load
from ledger.keys import generate_key, key_id_of
from ledger.signing import sign_vote
from ledger.types import Vote, VoteKind

BATCH = 50


async def flood(
    url: str, chain_id: str, claim: str, seconds: float, rate: float, ready: asyncio.Event
) -> int:
    stranger = generate_key()
    sent = 0
    async with connect(url, max_size=None) as ws:
        await greet(ws, role=Role.CLIENT, chain_id=chain_id)
        ready.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline:
            await ws.send(dump(GetStatus()))
            status = load(await ws.recv())
            assert isinstance(status, Status)
            vote = Vote(chain_id, status.height + 1, 0, VoteKind.PREVOTE, None, "")
            forged = dataclasses.replace(sign_vote(vote, stranger), validator=claim)
            assert forged.validator != key_id_of(stranger)
            for round_ in range(BATCH):
                block_id = os.urandom(32)
                await ws.send(dump(dataclasses.replace(forged, round=round_, block_id=block_id)))
            sent += BATCH
            await asyncio.sleep(BATCH / rate)
    return sent


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chain-id", required=True)
    parser.add_argument("--claim", required=True, help="the validator address votes claim")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--rate", type=float, required=True, help="frames a second per URL")
    parser.add_argument("urls", nargs="+")
    args = parser.parse_args()
    ready = [asyncio.Event() for _ in args.urls]
    tasks = [
        asyncio.create_task(flood(url, args.chain_id, args.claim, args.seconds, args.rate, event))
        for url, event in zip(args.urls, ready, strict=True)
    ]
    for event in ready:
        await event.wait()
    print("flooding", flush=True)
    print(sum(await asyncio.gather(*tasks)), flush=True)


if __name__ == "__main__":
    asyncio.run(main())

"""Fresh ids: each handed out once, in every thread and in a forked child too."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading

import pytest

from chuizi_async._ids import new_idempotency_key, new_request_id

REQUEST_ID = re.compile(r"req_[0-9a-f]{16}")
IDEMPOTENCY_KEY = re.compile(r"chuizi-[0-9a-f]{32}")


def test_ids_have_their_documented_shape() -> None:
    assert REQUEST_ID.fullmatch(new_request_id())
    assert IDEMPOTENCY_KEY.fullmatch(new_idempotency_key())


def test_ids_are_never_repeated_across_many_blocks() -> None:
    request_ids = [new_request_id() for _ in range(5000)]
    keys = [new_idempotency_key() for _ in range(5000)]
    assert len(set(request_ids)) == 5000
    assert len(set(keys)) == 5000


def test_threads_taking_ids_at_once_never_get_the_same_one() -> None:
    taken: list[list[str]] = [[] for _ in range(8)]
    start = threading.Barrier(8)

    def take(into: list[str]) -> None:
        start.wait()
        for _ in range(2000):
            into.append(new_idempotency_key())

    threads = [threading.Thread(target=take, args=(into,)) for into in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [key for into in taken for key in into]
    assert len(every) == 16000
    assert len(set(every)) == 16000


_FORK = """
import json, os, sys
from chuizi_async._ids import new_idempotency_key, new_request_id
new_request_id(), new_idempotency_key()  # the parent has a block of each
reader, writer = os.pipe()
pid = os.fork()
ids = [new_request_id() for _ in range(50)] + [new_idempotency_key() for _ in range(50)]
if pid == 0:
    os.write(writer, json.dumps(ids).encode())
    os._exit(0)
os.close(writer)
child = json.loads(os.read(reader, 1 << 20))
os.waitpid(pid, 0)
print(json.dumps({"parent": ids, "child": child}))
"""


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="no fork on this system")
def test_a_forked_child_never_sends_its_parents_ids() -> None:
    # in a fresh process: one that forks must have a single thread
    out = subprocess.run(
        [sys.executable, "-c", _FORK], capture_output=True, text=True, check=True, timeout=60
    )
    ids = json.loads(out.stdout)
    assert len(ids["child"]) == len(ids["parent"]) == 100
    assert not set(ids["child"]) & set(ids["parent"])

"""``medallion serve`` answers a Feast-shaped request with what ``feast serve`` answers, on the same Redis."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from medallion import serving
from medallion.core.config import Config
from medallion.serving.server import FeatureServer
from tests.serving.conftest import CONFIG_DIR
from tests.serving.families_gold import write_all

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("feast_imported")]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url + "/get-online-features", data=orjson.dumps(body), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


def by_name(answer: dict[str, Any]) -> dict[str, Any]:
    """Feast orders a view's features by a set (it varies between processes): compare by name."""
    return dict(zip(answer["metadata"]["feature_names"], answer["results"], strict=True))


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, redis_server: Any, serving_config: Callable[..., Config]
) -> Iterator[tuple[str, str]]:
    """Gold materialized into Redis (db 12), then ``feast serve`` in a feature_repo/ on the same stores
    and ``medallion serve``: their two URLs."""
    root = tmp_path_factory.mktemp("project")
    lake = root / "lake"
    today = dt.datetime.now(dt.UTC).date()
    write_all(lake, [today - dt.timedelta(days=k) for k in range(3, -1, -1)], 30)
    url = redis_server.url(12)
    redis_server.client(12).flushdb()
    cfg = serving_config(lake, **{"serving.online_store": "redis", "serving.redis_url": url})
    serving.materialize(cfg)

    repo = root / "feature_repo"
    repo.mkdir()
    shutil.copy(CONFIG_DIR.parent / "feature_repo" / "features.py", repo)
    serving.write_feature_store_yaml(cfg, repo, base_dir=root)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDALLION")}
    env |= {
        "MEDALLION_CONFIG_DIR": str(CONFIG_DIR),
        "MEDALLION__LAKE__ROOT": str(lake),
        "MEDALLION__SERVING__ONLINE_STORE": "redis",
        "MEDALLION__SERVING__REDIS_URL": url,
    }
    feast_port = _free_port()
    feast = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("feast")),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(feast_port),
        ],
        cwd=repo,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    feast_url = f"http://127.0.0.1:{feast_port}"
    ours = None
    try:
        ours = FeatureServer(cfg, port=0).start()
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(feast_url + "/health", timeout=2)
                break
            except OSError:
                if feast.poll() is not None or time.monotonic() > deadline:
                    err = feast.stderr.read().decode()[-3000:] if feast.stderr else ""
                    pytest.fail(f"feast serve did not come up: {err}")
                time.sleep(0.5)
        yield feast_url, ours.url
    finally:
        if ours is not None:
            ours.stop()
        feast.terminate()
        try:
            feast.wait(timeout=20)
        except subprocess.TimeoutExpired:
            feast.kill()
            feast.wait()
        redis_server.client(12).flushdb()


REQUESTS = [
    {
        "entities": {"user_id": ["u_000001", "u_000002", "u_nope", "u_000001"]},
        "feature_service": "user_profile",
    },
    {
        "entities": {"user_id": ["u_000003", "u_000004"], "item_id": ["i_000005", "i_nope"]},
        "feature_service": "ranking",
        "full_feature_names": True,
    },
    {
        "entities": {"item_id": ["i_000001", "i_000002", "i_000003"]},
        "features": [
            "item_embeddings:item_vector",
            "item_features:item_ctr_7d",
            "item_features:item_views_1d",
        ],
    },
]


@pytest.mark.parametrize("body", REQUESTS, ids=["service", "two-entities-full-names", "features"])
def test_medallion_serve_answers_what_feast_serve_answers(
    served: tuple[str, str], body: dict[str, Any]
) -> None:
    feast_url, our_url = served
    status_feast, theirs = post(feast_url, body)
    status_ours, ours = post(our_url, body)
    assert (status_feast, status_ours) == (200, 200), theirs
    assert set(ours) == set(theirs) == {"metadata", "results"}
    assert by_name(ours) == by_name(theirs)
    assert sorted(ours["metadata"]["feature_names"]) == sorted(theirs["metadata"]["feature_names"])


def test_medallion_serve_says_what_is_wrong_with_a_request(served: tuple[str, str]) -> None:
    _, our_url = served
    status, answer = post(our_url, {"entities": {"user_id": ["u_1"]}, "features": ["user_features:nope"]})
    assert status == 400 and "Unknown feature reference 'user_features:nope'" in answer["detail"]
    status, answer = post(our_url, {"entities": {"user_id": ["u_1"]}, "feature_service": "ranking"})
    assert status == 400, answer
    assert "ranking needs the join keys user_id, item_id" in answer["detail"]
    assert "lacks item_id" in answer["detail"]
    with urllib.request.urlopen(our_url + "/health", timeout=5) as response:
        assert response.status == 200

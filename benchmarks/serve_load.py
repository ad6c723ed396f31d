"""Load run of `proteus serve` on loopback: routing overhead per request, and requests lost.

Starts, as separate processes on 127.0.0.1, a stub OpenAI-compatible upstream that answers at once
(`python -m agents.serving.stub`) and `proteus serve` routing among every model of a router, each
model sent to the stub. Then, with a minimal keep-alive HTTP/1.1 client (so the load generator
costs as little CPU as possible), it sends the same chat request

  1. to the stub directly (the round trip alone), then
  2. through the server (routing + forwarding + recording the id),

``--requests`` times each at ``--concurrency`` in flight, and once more at concurrency 1.
Each request carries another prompt (the 365 of the RouterBench sample, in turn), so the router
encodes and routes a new text every time. It reports latency p50/p99 of both, their difference (the overhead a client sees), the server's own
per-request figures from its ``server-timing`` header (routing, and total minus upstream wait), and
requests lost: every request must get a 200 with a request id, the stub must have received exactly
one upstream call per request, and the server's state file must hold every id.

    python benchmarks/serve_load.py [--router DIR] [--requests 5000] [--concurrency 64] [--json out.json]

Without ``--router`` a tiny router is trained first on the RouterBench sample in ../shared/data
(about 15 s). Everything stops by itself; nothing but 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "data" / "routerbench" / "routerbench_0shot_sample365.csv"
PROMPT = "A train leaves at 3 pm travelling 60 km/h; another leaves at 4 pm at 80 km/h. When does the second catch up?"


def prompts() -> list[str]:
    """The RouterBench sample's prompts (every request routes a different text), or variations of one prompt."""
    if SAMPLE.is_file():
        import pandas as pd

        return [str(p) for p in pd.read_csv(SAMPLE, usecols=["prompt"])["prompt"]]
    return [f"{PROMPT} (variant {i})" for i in range(365)]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def train_tiny_router(out: Path) -> None:
    import torch

    from agents.proteus.train import load_config, train

    torch.set_num_threads(1)
    config = load_config("Proteus-RouterBench-v0")
    config["env_kwargs"] = {"session_length": 16}
    config["ppo"].update({"n_steps": 64, "batch_size": 64, "n_epochs": 1})
    config["dual"].update({"n_bins": 3})
    config["checkpoint_every"] = 0
    os.environ.setdefault("PROTEUS_HOME", str(out.parent / "home"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # 128 training steps: a collapsed policy is expected (routing cost is what is measured)
        train("Proteus-RouterBench-v0", config=config, out_dir=out, seed=0, timesteps=128, n_envs=1, data_path=str(SAMPLE))


def wait_healthy(port: int, path: str, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}: {process.stdout.read() if process.stdout else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
                if conn.recv(64).startswith(b"HTTP/1.1 "):
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answered on 127.0.0.1:{port} within {timeout} s")


class Connection:
    """One keep-alive HTTP/1.1 connection (responses must carry Content-Length)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.writer.write(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
                          .encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        response_headers = {}
        for line in lines[1:]:
            if ":" in line:
                key, _, value = line.partition(":")
                response_headers[key.strip().lower()] = value.strip()
        payload = await self.reader.readexactly(int(response_headers.get("content-length", "0")))
        return status, response_headers, payload

    def close(self) -> None:
        self.writer.close()


async def load(port: int, path: str, bodies: list[bytes], headers: dict[str, str], n: int, concurrency: int, timeout: float) -> dict:
    latencies = np.zeros(n)
    server_timing: list[dict[str, float]] = []
    ids: list[str] = []
    failures: list[str] = []
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        connection = await Connection.open(port)
        try:
            while next_index < n:
                i = next_index
                next_index += 1
                start = time.perf_counter()
                try:
                    status, response_headers, payload = await asyncio.wait_for(connection.post(path, bodies[i % len(bodies)], headers), timeout)
                except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as exc:
                    failures.append(f"request {i}: {type(exc).__name__}")
                    connection.close()
                    connection = await Connection.open(port)
                    continue
                latencies[i] = time.perf_counter() - start
                if status != 200:
                    failures.append(f"request {i}: status {status}: {payload[:200]!r}")
                    continue
                if "x-proteus-request-id" in response_headers:
                    ids.append(response_headers["x-proteus-request-id"])
                    timing = dict(part.strip().split(";dur=") for part in response_headers["server-timing"].split(","))
                    server_timing.append({key: float(value) / 1e3 for key, value in timing.items()})
                elif json.loads(payload).get("object") != "chat.completion":
                    failures.append(f"request {i}: unexpected body {payload[:200]!r}")
        finally:
            connection.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - start
    return {"latency": latencies, "wall": wall, "ids": ids, "failures": failures, "server_timing": server_timing}


def quantiles_ms(values) -> dict[str, float]:
    values = np.asarray(values, dtype=np.float64) * 1e3
    return {"p50": float(np.percentile(values, 50)), "p99": float(np.percentile(values, 99)), "mean": float(values.mean())}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def stub_stats(port: int) -> dict:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"GET /stats HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    return json.loads(data.split(b"\r\n\r\n", 1)[1])


def run(args: argparse.Namespace) -> dict:
    work = Path(tempfile.mkdtemp(prefix="proteus_serve_load_"))
    router = Path(args.router) if args.router else work / "router"
    if not args.router:
        print("training a tiny RouterBench router ...", flush=True)
        train_tiny_router(router)
    from agents.proteus.router import ProteusRouter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        models = [str(m) for m in ProteusRouter.load(router).head.models]
    stub_port, serve_port = free_port(), free_port()
    config = {"upstreams": {m: {"base_url": f"http://127.0.0.1:{stub_port}/v1", "model": f"{m}-up"} for m in models},
              "tenants": {"bench": {"tau": args.tau}}}
    (work / "upstreams.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    stub = subprocess.Popen([sys.executable, "-m", "agents.serving.stub", "--port", str(stub_port)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    server = subprocess.Popen([sys.executable, "-c", "import sys; from agents.cli import main; sys.exit(main())", "serve", "--router", str(router),
                               "--upstreams", str(work / "upstreams.yaml"), "--port", str(serve_port), "--state", str(work / "state.sqlite"),
                               "--no-access-log", "--log-level", "warning"], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    try:
        wait_healthy(stub_port, "/stats", stub)
        wait_healthy(serve_port, "/healthz", server)
        texts = prompts()
        body = [json.dumps({"model": "proteus", "messages": [{"role": "user", "content": t}], "max_tokens": 16}).encode() for t in texts]
        proxied = {"X-Proteus-Tenant": "bench"}
        direct_body = [json.dumps({"model": f"{models[0]}-up", "messages": [{"role": "user", "content": t}], "max_tokens": 16}).encode()
                       for t in texts]
        results: dict = {"prompts": len(texts), "requests": args.requests, "concurrency": args.concurrency, "models": len(models), "tau": args.tau}
        asyncio.run(load(stub_port, "/v1/chat/completions", direct_body, {}, 200, args.concurrency, args.timeout))  # warm-up
        asyncio.run(load(serve_port, "/v1/chat/completions", body, proxied, 200, args.concurrency, args.timeout))
        stub_before = stub_stats(stub_port)
        for label, concurrency, n in (("concurrent", args.concurrency, args.requests), ("sequential", 1, args.sequential)):
            direct = asyncio.run(load(stub_port, "/v1/chat/completions", direct_body, {}, n, concurrency, args.timeout))
            cpu_before = cpu_seconds(server.pid)
            through = asyncio.run(load(serve_port, "/v1/chat/completions", body, proxied, n, concurrency, args.timeout))
            server_cpu_ms = (cpu_seconds(server.pid) - cpu_before) * 1e3 / n
            d, t = quantiles_ms(direct["latency"]), quantiles_ms(through["latency"])
            timing = through["server_timing"]
            results[label] = {
                "concurrency": concurrency, "requests": n,
                "direct_ms": d, "proteus_ms": t,
                "overhead_ms": {"p50": t["p50"] - d["p50"], "p99": t["p99"] - d["p99"], "mean": t["mean"] - d["mean"]},
                "server_overhead_ms": quantiles_ms([s["overhead"] for s in timing]) if timing else None,
                "server_routing_ms": quantiles_ms([s["route"] for s in timing]) if timing else None,
                "throughput_rps": {"direct": n / direct["wall"], "proteus": n / through["wall"]},
                "server_cpu_ms_per_request": server_cpu_ms,
                "failures": direct["failures"][:5] + through["failures"][:5],
                "lost": (n - len(through["ids"])) + len(direct["failures"]),
                "ids": through["ids"],
            }
        sent = args.requests + args.sequential
        stub_after = stub_stats(stub_port)
        upstream_calls = stub_after["requests"] - stub_before["requests"] - sent  # minus the direct calls
        results["stub_connections_opened"] = stub_after["connections"] - stub_before["connections"]
        ids = set(results["concurrent"].pop("ids")) | set(results["sequential"].pop("ids"))
        time.sleep(0.5)
        with sqlite3.connect(work / "state.sqlite", timeout=30) as db:
            stored = {row[0] for row in db.execute("SELECT id FROM requests WHERE tenant = 'bench'")}
        results["lost"] = {"no_200_or_no_id": results["concurrent"]["lost"] + results["sequential"]["lost"],
                           "upstream_calls_missing": sent - upstream_calls, "ids_not_stored": len(ids - stored), "distinct_ids": len(ids)}
        return results
    finally:
        for process in (server, stub):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--router", default=None, help="artifact directory (default: train a tiny RouterBench router first)")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--sequential", type=int, default=500, help="requests of the concurrency-1 run")
    parser.add_argument("--tau", type=float, default=0.7)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()
    results = run(args)
    for label in ("concurrent", "sequential"):
        r = results[label]
        print(f"\n{label}: {r['requests']} requests at concurrency {r['concurrency']}")
        print(f"  stub round trip alone      p50 {r['direct_ms']['p50']:7.2f} ms   p99 {r['direct_ms']['p99']:7.2f} ms   "
              f"{r['throughput_rps']['direct']:7.0f} req/s")
        print(f"  through proteus serve      p50 {r['proteus_ms']['p50']:7.2f} ms   p99 {r['proteus_ms']['p99']:7.2f} ms   "
              f"{r['throughput_rps']['proteus']:7.0f} req/s")
        print(f"  overhead seen by a client  p50 {r['overhead_ms']['p50']:7.2f} ms   p99 {r['overhead_ms']['p99']:7.2f} ms")
        if r["server_overhead_ms"]:
            print(f"  server's own time          p50 {r['server_overhead_ms']['p50']:7.2f} ms   p99 {r['server_overhead_ms']['p99']:7.2f} ms"
                  f"   (routing p50 {r['server_routing_ms']['p50']:.2f} ms, p99 {r['server_routing_ms']['p99']:.2f} ms)")
        print(f"  server CPU per request     {r['server_cpu_ms_per_request']:7.2f} ms")
        if r["failures"]:
            print(f"  failures: {r['failures']}")
    print(f"\nlost: {results['lost']}   (TCP connections opened to the stub during the runs: {results['stub_connections_opened']})")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""Benchmark: the statistics API on an existing published home.

    python benchmarks/bench_serve.py --home demo/home [--repeat 5]

Starts `stat19 serve`'s application with uvicorn on 127.0.0.1 (a free port) and times, per
product, over real HTTP: the table's dimensions, a typical filtered query (the country and the
fylker, the latest period, every other category) as JSON-stat and as CSV, and the whole table as
CSV and as JSON-stat (when it is not over the size limit). Prints the median milliseconds and
the answer sizes.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from stat19.serve import API, SOURCE, create_app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(args.home), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}{API}/{SOURCE}", timeout=600)

    def timed(method: str, path: str, **kw) -> tuple[float, int, int]:
        times, size, status = [], 0, 0
        for _ in range(args.repeat):
            started = time.perf_counter()
            r = client.request(method, path, **kw)
            times.append(time.perf_counter() - started)
            size, status = len(r.content), r.status_code
        return statistics.median(times) * 1000, size, status

    print(f"{'product':<22}{'request':<28}{'ms':>9}{'bytes':>13}  status")
    for table in client.get("/table").json():
        name = table["tableId"]
        dims = client.get(f"/table/{name}/dimension").json()
        geo = [c["code"] for c in dims[0]["categories"] if c.get("level") in ("national", "fylke")]
        body = {"dimensions": [{"code": "geo", "values": geo}]}
        if table["time_dimension"]:
            body["dimensions"].append({"code": table["time_dimension"], "filter": "bottom", "values": ["1"]})
        runs = [
            ("dimensions", "GET", f"/table/{name}/dimension", {}),
            ("fylker, latest, JSON-stat", "POST", f"/table/{name}/data", {"json": body}),
            ("fylker, latest, CSV", "POST", f"/table/{name}/data", {"json": {**body, "response": {"format": "csv"}}}),
            ("whole table, CSV", "GET", f"/table/{name}/data", {"params": {"format": "csv"}}),
            ("whole table, JSON-stat", "GET", f"/table/{name}/data", {}),
        ]
        for label, method, path, kw in runs:
            ms, size, status = timed(method, path, **kw)
            print(f"{name:<22}{label:<28}{ms:>9.1f}{size:>13,}  {status}")
    server.should_exit = True


if __name__ == "__main__":
    main()

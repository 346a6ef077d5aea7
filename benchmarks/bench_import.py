"""Import time and RSS of ``import clust`` + a client, next to the official SDK's.

Run: ``python -m benchmarks.bench_import``. Each measurement is a fresh interpreter
(median of 7), so nothing is cached in-process.
"""

from __future__ import annotations

import subprocess
import sys
from statistics import median

PROBE = """
import time
start = time.perf_counter()
{code}
elapsed = time.perf_counter() - start
rss = 0
for line in open("/proc/self/status"):
    if line.startswith("VmRSS:"):
        rss = int(line.split()[1]) / 1024
print(elapsed, rss)
"""

# httpcore imports trio whenever it is installed (our dev extras install it): the
# "no trio" rows hide it, as on a machine without trio.
NO_TRIO = "import sys\nsys.modules['trio'] = None\n"
CASES = {
    "python -c pass (baseline)": "pass",
    "import clust; Client(...)": "import clust\nclust.Client(api_key='k')",
    "import clust; AsyncClient(...)": "import clust\nclust.AsyncClient(api_key='k')",
    "import anthropic; Anthropic(...)": "import anthropic\nanthropic.Anthropic(api_key='k')",
    "no trio: import clust; Client(...)": NO_TRIO + "import clust\nclust.Client(api_key='k')",
    "no trio: import anthropic; Anthropic": NO_TRIO
    + "import anthropic\nanthropic.Anthropic(api_key='k')",
    "clust + first request body built": "import clust\nfrom clust.messages import Message, "
    "MessagesRequestBody\nclust.Client(api_key='k')\nMessagesRequestBody(model='m', "
    "max_tokens=1, messages=[Message.user('hi')]).to_json()",
}


def measure(code: str, runs: int = 7) -> tuple[float, float]:
    times, rss = [], []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", PROBE.format(code=code)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        times.append(float(out[0]))
        rss.append(float(out[1]))
    return median(times), median(rss)


def main() -> None:
    print(f"{'case':<40} {'import ms':>10} {'RSS MB':>8}")
    for name, code in CASES.items():
        seconds, rss = measure(code)
        print(f"{name:<40} {seconds * 1000:>10.0f} {rss:>8.1f}")


if __name__ == "__main__":
    main()

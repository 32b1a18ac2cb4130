"""Load with wrk (Debian's package): the request mixes as Lua scripts, and its output parsed."""

from __future__ import annotations

import re
import statistics
import subprocess
from pathlib import Path
from typing import Any

# Every script gets a per-thread random seed (setup/init), so threads do not repeat each other.
_SEEDED = """
local counter = 0
function setup(thread) counter = counter + 1; thread:set("id", counter) end
function init(args)
  math.randomseed(os.time() * 1000 + id)
  arg = args
end
"""

SCRIPTS = {
    # A hot set of 1,000 product ids, in turn: after the warm-up every read is a cache hit.
    "hot_detail": _SEEDED
    + """
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/api/v1/products/" .. ((n % 1000) + 1))
end
""",
    # Any product of the catalog (arg 1 = catalog size): uncached on a bypass replica.
    "any_detail": _SEEDED
    + """
request = function()
  return wrk.format("GET", "/api/v1/products/" .. math.random(1, tonumber(arg[1])))
end
""",
    # Filtered lists; a random price floor makes (nearly) every request a different query.
    "filtered_list": _SEEDED
    + """
local cats = {"mobiles", "laptops", "men", "women", "kitchen-appliances", "audio", "cameras",
  "furniture", "electronics", "fashion"}
local sorts = {"price", "-price", "newest", "rating"}
request = function()
  local path = "/api/v1/products?category=" .. cats[math.random(#cats)]
    .. "&sort=" .. sorts[math.random(#sorts)]
  if arg[2] == "vary" then path = path .. "&min_price=" .. math.random(0, 500000) end
  return wrk.format("GET", path)
end
""",
    # Text search over a vocabulary; "vary" adds a random price floor (a cache miss each).
    "search": _SEEDED
    + """
local terms = {"phone", "samsung", "bluetooth", "cotton", "laptop", "shoes", "watch",
  "camera", "headphones", "saree", "wireless", "samsung%205g", "steel", "kurta"}
request = function()
  local path = "/api/v1/products?q=" .. terms[math.random(#terms)]
  if arg[2] == "vary" then path = path .. "&min_price=" .. math.random(0, 500000) end
  return wrk.format("GET", path)
end
""",
    # One order of one unit over products 1..arg[1], with a bearer token (arg[2]) and a
    # fresh Idempotency-Key each.
    "orders": _SEEDED
    + """
local n = 0
request = function()
  n = n + 1
  local body = '{"items":[{"product_id":' .. math.random(1, tonumber(arg[1]))
    .. ',"quantity":1}],"shipping_address":{"name":"Bench","line1":"1 MG Road",'
    .. '"city":"Bengaluru","state":"Karnataka","pincode":"560001","phone":"9876543210"}}'
  local headers = {["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. arg[2],
    ["Idempotency-Key"] = "bench-" .. id .. "-" .. n .. "-" .. math.random(1, 1000000000)}
  return wrk.format("POST", "/api/v1/orders", headers, body)
end
""",
    # Admin price changes over products 1..arg[1] (bearer token arg[2]); price = mrp, so
    # the price <= mrp rule holds whatever the product held before.
    "admin_patch": _SEEDED
    + """
request = function()
  local price = math.random(10000, 10000000)
  local headers = {["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. arg[2]}
  return wrk.format("PATCH", "/api/v1/products/" .. math.random(1, tonumber(arg[1])), headers,
    '{"price":' .. price .. ',"mrp":' .. price .. '}')
end
""",
    # The storefront's read mix with writes, for the HTTP cache's hit ratio. Arguments:
    # products, admin token, Zipf exponent, write share, list/search share, reserved (the
    # stale checker's products 1..reserved, never written here). Details are Zipf over
    # product ids (rank = id); lists and search pages are picked uniformly. Each answer's
    # X-Edge header is counted per kind; done() prints the totals on one `edge:` line.
    "zipf_mix": """
local threads, counter = {}, 0
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end
detail_hits, detail_misses, list_hits, list_misses, writes, write_errors = 0, 0, 0, 0, 0, 0
local cdf, total, n, token, write_share, list_share, reserved
function init(args)
  math.randomseed(os.time() * 1000 + id)
  n, token = tonumber(args[1]), args[2]
  local s = tonumber(args[3])
  write_share, list_share, reserved = tonumber(args[4]), tonumber(args[5]), tonumber(args[6])
  cdf, total = {}, 0
  for i = 1, n do total = total + 1 / (i ^ s); cdf[i] = total end
end
local function zipf()
  local u, lo, hi = math.random() * total, 1, n
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then lo = mid + 1 else hi = mid end
  end
  return lo
end
local cats = {"mobiles", "laptops", "men", "women", "kitchen-appliances", "audio", "cameras",
  "furniture", "electronics", "fashion"}
local sorts = {"price", "-price", "newest", "rating"}
local terms = {"phone", "samsung", "bluetooth", "cotton", "laptop", "shoes", "watch",
  "camera", "headphones", "saree", "wireless", "samsung%205g", "steel", "kurta"}
request = function()
  local r = math.random()
  if r < write_share then
    local pid = zipf()
    if pid <= reserved then pid = pid + reserved end
    local price = math.random(10000, 10000000)
    local headers = {["Content-Type"] = "application/json",
      ["Authorization"] = "Bearer " .. token}
    return wrk.format("PATCH", "/api/v1/products/" .. pid, headers,
      '{"price":' .. price .. ',"mrp":' .. price .. '}')
  elseif r < write_share + list_share then
    if math.random() < 0.5 then
      return wrk.format("GET", "/api/v1/products?category=" .. cats[math.random(#cats)]
        .. "&sort=" .. sorts[math.random(#sorts)])
    end
    return wrk.format("GET", "/api/v1/products?q=" .. terms[math.random(#terms)])
  end
  return wrk.format("GET", "/api/v1/products/" .. zipf())
end
response = function(status, headers, body)
  local cc = headers["Cache-Control"] or headers["cache-control"] or ""
  if not string.find(cc, "public", 1, true) then
    writes = writes + 1
    if status ~= 200 then write_errors = write_errors + 1 end
    return
  end
  local hit = (headers["X-Edge"] or headers["x-edge"]) == "HIT"
  if string.sub(body, 1, 9) == '{"items":' then
    if hit then list_hits = list_hits + 1 else list_misses = list_misses + 1 end
  elseif hit then detail_hits = detail_hits + 1
  else detail_misses = detail_misses + 1 end
end
function done(summary, latency, requests)
  local names = {"detail_hits", "detail_misses", "list_hits", "list_misses", "writes",
    "write_errors"}
  local line = "edge:"
  for _, name in ipairs(names) do
    local sum = 0
    for _, thread in ipairs(threads) do sum = sum + thread:get(name) end
    line = line .. " " .. name .. "=" .. sum
  end
  io.write(line .. "\\n")
end
""",
}


def run(
    url: str,
    seconds: float,
    connections: int,
    workdir: Path,
    script: str | None = None,
    args: tuple[str, ...] = (),
    headers: tuple[str, ...] = (),
) -> dict[str, float]:
    """One wrk run: requests/s, latency percentiles (ms), error counts (and edge: counts)."""
    cmd = [
        "wrk",
        f"-t{min(2, connections)}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "5s",
    ]
    for header in headers:
        cmd += ["-H", header]
    if script:
        path = workdir / f"{script}.lua"
        path.write_text(SCRIPTS[script])
        cmd += ["-s", str(path)]
    cmd += [url, *(["--", *args] if args else [])]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30, check=True)
    if script and ".lua:" in out.stderr:  # wrk reports a script's errors but exits 0
        raise RuntimeError(f"wrk script {script} failed:\n{out.stderr}")
    return parse(out.stdout)


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def parse(out: str) -> dict[str, float]:
    """Requests/sec, p50/p90/p99 latency (ms) and error counts from wrk's --latency output."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    if rps is None or total is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    figures = {"rps": float(rps.group(1)), "requests": float(total.group(1))}
    for pct in ("50", "90", "99"):
        match = re.search(rf"\s{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s|m)\b", out)
        figures[f"p{pct}_ms"] = _ms(*match.groups()) if match else float("nan")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    figures["non_2xx"] = float(non2xx.group(1)) if non2xx else 0.0
    figures["socket_errors"] = float(sum(map(int, errors.groups()))) if errors else 0.0
    # requests/s that succeeded (for orders: 201s per second)
    seconds = _ms(total.group(2), total.group(3)) / 1000
    figures["ok_rps"] = (figures["requests"] - figures["non_2xx"]) / seconds
    # What a script's done() printed: `edge: name=count ...` (zipf_mix).
    edge = re.search(r"^edge:(.*)$", out, re.MULTILINE)
    for name, count in re.findall(r"(\w+)=(\d+)", edge.group(1) if edge else ""):
        figures[name] = float(count)
    return figures


def summarise(runs: list[dict[str, float]]) -> dict[str, Any]:
    """Median with min and max for every figure."""
    return {
        key: {
            "median": round(statistics.median(r[key] for r in runs), 2),
            "min": round(min(r[key] for r in runs), 2),
            "max": round(max(r[key] for r in runs), 2),
        }
        for key in runs[0]
    }

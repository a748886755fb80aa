-- POST /login for users u<j>@bench.example picked at random among BENCH_USERS, right and wrong
-- passwords alternating (every BENCH_WRONG_EVERY-th request is wrong; 2 = half). User j's password
-- is the one of real hash j mod BENCH_REAL (the loader copies those hashes round the table), so a
-- wrong password lands on a random account each time: no account sees more than a few failures.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local users = tonumber(os.getenv("BENCH_USERS"))
local real = tonumber(os.getenv("BENCH_REAL"))
local wrong_every = tonumber(os.getenv("BENCH_WRONG_EVERY") or "2")
-- BENCH_CLIENTS > 0: each request carries "X-Forwarded-For: 10.x.y.z", one of that many addresses
-- (wrk plays a trusted proxy in front of many clients); 0: no header, every login from one address.
local clients = tonumber(os.getenv("BENCH_CLIENTS") or "0")
local sent = 0

function init(args)
  math.randomseed((thread_id or 1) * 104729 + os.time())
end

function request()
  sent = sent + 1
  local j = math.random(0, users - 1)
  local kind = "right"
  if wrong_every > 0 and sent % wrong_every == 0 then
    kind = "wrong"
  end
  local body = string.format(
    '{"email":"u%d@bench.example","password":"bench-password-%d-%s-horse"}', j, j % real, kind)
  local headers = { ["Content-Type"] = "application/json" }
  if clients > 0 then
    local c = math.random(0, clients - 1)
    headers["X-Forwarded-For"] = string.format("10.%d.%d.%d", math.floor(c / 65536) % 256,
      math.floor(c / 256) % 256, c % 256)
  end
  return wrk.format("POST", "/login", headers, body)
end

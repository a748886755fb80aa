-- GET /session with "Authorization: Bearer <token>", rotating through the tokens of a file
-- (one a line; BENCH_TOKENS names it). Every request is built once, in init().
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local requests_ = {}
local next_ = 1

function init(args)
  for token in io.lines(os.getenv("BENCH_TOKENS")) do
    if token ~= "" then
      table.insert(requests_, wrk.format("GET", "/session", { Authorization = "Bearer " .. token }))
    end
  end
  -- Threads start at different places in the list, so they do not ask for the same token together.
  next_ = ((thread_id or 1) * 7919) % #requests_ + 1
end

function request()
  local r = requests_[next_]
  next_ = next_ % #requests_ + 1
  return r
end

-- wrk script of scripts/bench-proxy.sh and scripts/bench-noise.sh: each
-- request carries the next of the sessions in SESSIONS_FILE (one per line)
-- as X-Session-Id, starting at a random one.
local sessions = {}
for line in io.lines(os.getenv("SESSIONS_FILE")) do sessions[#sessions + 1] = line end
local i = math.random(#sessions)
request = function()
  i = i % #sessions + 1
  return wrk.format(nil, nil, { ["X-Session-Id"] = sessions[i] })
end

-- wrk script: a new URL each request, /nostore?i=N (bench/origin answers
-- it no-store), N counting up from the start given as the script's one
-- argument, so that the loads of one run ask for no URL twice.
-- Used by bench/run.sh and bench/profile.sh.
local i = 0
init = function(args) i = tonumber(args[1]) end
request = function()
  i = i + 1
  return wrk.format("GET", "/nostore?i=" .. i)
end

-- wrk script: POST the body in the file named after `--` with Content-Type application/json.
function init(args)
  local file = assert(io.open(args[1], "rb"))
  local body = file:read("*a")
  file:close()
  request_data = wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end

function request()
  return request_data
end

-- wrk script for bench/compare.sh: non-streaming POST /v1/chat/completions with a JSON
-- body shaped like the ones AIPerf and aiperf-gen send, and a one-line JSON summary.
--
--   WRK_MODEL=m WRK_PROMPT_WORDS=32 wrk -t2 -c64 -d10s -s bench/wrk-chat.lua URL
--
-- The prompt is WRK_PROMPT_WORDS words (the mock's words are one o200k token each, so
-- words = tokens); no max_tokens is sent, so the mock answers with its --output-tokens.

local model = os.getenv("WRK_MODEL") or "m"
local words = tonumber(os.getenv("WRK_PROMPT_WORDS") or "32")

local vocab = { "the", "of", "and", "to", "in", "is", "that", "for", "it", "with" }
local prompt = {}
for i = 1, words do
    prompt[i] = vocab[(i - 1) % #vocab + 1]
end

wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
wrk.body = string.format(
    '{"model":"%s","messages":[{"role":"user","content":"%s"}],"stream":false}',
    model, table.concat(prompt, " "))

-- Summary on stdout, last line, for compare.sh to parse.
function done(summary, latency, requests)
    local e = summary.errors
    local secs = summary.duration / 1e6
    io.write(string.format(
        '{"requests":%d,"duration_s":%.6f,"requests_per_s":%.3f,' ..
        '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
        '"latency_ms":{"p50":%.4f,"p99":%.4f,"max":%.4f}}\n',
        summary.requests, secs, summary.requests / secs,
        e.connect, e.read, e.write, e.status, e.timeout,
        latency:percentile(50) / 1e3, latency:percentile(99) / 1e3, latency.max / 1e3))
end

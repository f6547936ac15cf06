#!/usr/bin/env bash
# The REST API of `kvfusion serve`, one curl call per endpoint, checking every status code:
#
#   bash samples/RestClient/curl.sh [BASE_URL]     # default: $KVFUSION_URL, else http://127.0.0.1:8080
#
# KVFUSION_API_KEY, when set, is sent as the bearer token (a service with Auth:Keys configured requires one).
# Each call prints "ok STATUS METHOD PATH (what)"; the first unexpected status prints the answer's body to stderr
# and the script exits 1. Needs bash and curl only (JSON fields are picked out with grep).
set -euo pipefail

BASE="${1:-${KVFUSION_URL:-http://127.0.0.1:8080}}"
BASE="${BASE%/}"
AUTH=()
if [[ -n "${KVFUSION_API_KEY:-}" ]]; then
  AUTH=(-H "Authorization: Bearer ${KVFUSION_API_KEY}")
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
BODY="$WORK/body"

fail() {
  echo "FAIL $*" >&2
  if [[ -s "$BODY" ]]; then
    head -c 2000 "$BODY" >&2
    echo >&2
  fi
  exit 1
}

# call WHAT EXPECTED_STATUS METHOD PATH [curl options...]: the answer's body is left in $BODY.
call() {
  local what="$1" expected="$2" method="$3" path="$4"
  shift 4
  local status
  : >"$BODY"
  if ! status="$(curl -sS --max-time 120 -o "$BODY" -w '%{http_code}' -X "$method" ${AUTH[@]+"${AUTH[@]}"} "$@" "$BASE$path")"; then
    fail "$what: $method $BASE$path could not be sent (is kvfusion serve running at $BASE?)"
  fi
  if [[ "$status" != "$expected" ]]; then
    fail "$what: $method $path answered $status, expected $expected"
  fi
  echo "ok   $status $method $path ($what)"
}

# json_call: call with a JSON body (the last argument).
json_call() {
  local what="$1" expected="$2" method="$3" path="$4" json="$5"
  call "$what" "$expected" "$method" "$path" -H 'Content-Type: application/json' --data-binary "$json"
}

# expect TEXT: the last answer's body must contain TEXT.
expect() {
  grep -qF -- "$1" "$BODY" || fail "the answer does not contain '$1'"
}

# ids: every 64-hex-digit "id" in the last answer, in order.
ids() {
  grep -oE '"id" *: *"[0-9a-f]{64}"' "$BODY" | grep -oE '[0-9a-f]{64}' || true
}

echo "KvFusion REST API at $BASE"

# Operations: liveness, readiness (model loaded, every tier up), the model, Prometheus metrics.
call "liveness" 200 GET /healthz
call "readiness" 200 GET /readyz
expect '"status":"ready"'
call "the served model" 200 GET /v1/models
expect '"fingerprint"'
call "metrics" 200 GET /metrics

# Chunks: precompute one, read its metadata and KV, pin it, delete it, upload the KV again.
TEXT="sorted(iterable, key=None, reverse=False) returns a new sorted list from the items in iterable. Sample run $(date +%s%N)."
json_call "precompute a chunk" 200 POST /v1/chunks "{\"chunks\": [{\"text\": \"$TEXT\"}]}"
CHUNK="$(ids | head -n 1)"
[[ -n "$CHUNK" ]] || fail "POST /v1/chunks returned no chunk id"
call "chunk metadata" 200 GET "/v1/chunks/$CHUNK"
expect "\"id\":\"$CHUNK\""
call "download the chunk's KV container" 200 GET "/v1/chunks/$CHUNK/kv"
cp "$BODY" "$WORK/chunk.kv"
call "the KV re-encoded as fp8" 200 GET "/v1/chunks/$CHUNK/kv?codec=fp8"
json_call "pin in host memory" 200 POST "/v1/chunks/$CHUNK/pin" '{"ttl_seconds": 60}'
expect '"pinned_until"'
call "release the pin" 204 DELETE "/v1/chunks/$CHUNK/pin"
call "delete from every tier" 204 DELETE "/v1/chunks/$CHUNK"
call "a deleted chunk is gone" 404 GET "/v1/chunks/$CHUNK"
call "upload the KV container again" 201 PUT "/v1/chunks/$CHUNK/kv" -H 'Content-Type: application/octet-stream' --data-binary "@$WORK/chunk.kv"
call "the uploaded chunk is back" 200 GET "/v1/chunks/$CHUNK"

# Documents: chunked and precomputed by the service, found again by id; streamed with progress events.
DOC_TEXT="The len() function returns the number of items of a sequence or collection. The sorted() function returns a new sorted list. The dict.items() method returns a view of the dictionary's (key, value) pairs. A list comprehension builds a new list from an iterable in one expression."
json_call "register a document" 201 POST /v1/documents "{\"text\": \"$DOC_TEXT\", \"name\": \"curl-sample\", \"chunk_tokens\": 32}"
DOCUMENT="$(ids | head -n 1)"
DOC_CHUNKS="$(ids | tail -n +2 | awk '!seen[$0]++')"
[[ -n "$DOCUMENT" && -n "$DOC_CHUNKS" ]] || fail "POST /v1/documents returned no document or chunk ids"
call "the document's chunks" 200 GET "/v1/documents/$DOCUMENT"
expect '"name":"curl-sample"'
json_call "register a document, streamed" 200 POST /v1/documents "{\"text\": \"$DOC_TEXT\", \"chunk_tokens\": 32, \"stream\": true}"
expect 'event: progress'
expect 'event: document'

# The ids of the document's chunks as a JSON array, in order.
CHUNK_LIST="$(printf '"%s",' $DOC_CHUNKS)"
CHUNK_LIST="[${CHUNK_LIST%,}]"
MESSAGES='[{"role": "system", "content": "Answer from the documentation above."}, {"role": "user", "content": "What does sorted() return?"}]'

# Chat completions fused from the stored chunks: blend, then full prefill for comparison, then streamed.
json_call "chat, blend" 200 POST /v1/chat/completions "{\"messages\": $MESSAGES, \"max_tokens\": 16, \"temperature\": 0, \"kvfusion\": {\"chunks\": $CHUNK_LIST, \"mode\": \"blend\", \"recompute_ratio\": 0.15}}"
expect '"cached_tokens"'
expect '"ttft_ms"'
json_call "chat, full prefill" 200 POST /v1/chat/completions "{\"messages\": $MESSAGES, \"max_tokens\": 16, \"temperature\": 0, \"kvfusion\": {\"chunks\": $CHUNK_LIST, \"mode\": \"full\"}}"
expect '"mode":"full"'
json_call "chat, streamed with usage" 200 POST /v1/chat/completions "{\"messages\": $MESSAGES, \"max_tokens\": 8, \"temperature\": 0, \"stream\": true, \"stream_options\": {\"include_usage\": true}, \"kvfusion\": {\"chunks\": $CHUNK_LIST, \"mode\": \"reuse\"}}"
expect 'data: [DONE]'
expect '"usage"'
json_call "chat, no kvfusion (exact prefix reuse)" 200 POST /v1/chat/completions "{\"messages\": $MESSAGES, \"max_tokens\": 8, \"temperature\": 0.7, \"top_p\": 0.9, \"seed\": 7, \"stop\": [\"\\n\\n\"]}"
json_call "text completion after the chunks" 200 POST /v1/completions "{\"prompt\": \"Question: What does len() return?\\nAnswer:\", \"max_tokens\": 8, \"temperature\": 0, \"kvfusion\": {\"chunks\": $CHUNK_LIST, \"mode\": \"blend\"}}"
expect '"text"'

# Errors: ProblemDetails with a status that names the problem.
ZERO_ID="$(printf '0%.0s' {1..64})"
call "a malformed chunk id" 400 GET /v1/chunks/not-a-chunk-id
expect '"error"'
call "a chunk nobody stored" 404 GET "/v1/chunks/$ZERO_ID"
json_call "a chat naming a chunk nobody stored" 404 POST /v1/chat/completions "{\"messages\": $MESSAGES, \"max_tokens\": 4, \"kvfusion\": {\"chunks\": [\"$ZERO_ID\"], \"mode\": \"blend\"}}"
json_call "an unknown field inside kvfusion" 400 POST /v1/chat/completions "{\"messages\": $MESSAGES, \"kvfusion\": {\"chunks\": $CHUNK_LIST, \"mod\": \"blend\"}}"
json_call "an unknown fusion mode" 400 POST /v1/chat/completions "{\"messages\": $MESSAGES, \"kvfusion\": {\"mode\": \"fastest\"}}"
json_call "a chat without messages" 400 POST /v1/chat/completions '{"messages": []}'
json_call "an empty prompt" 400 POST /v1/completions '{"prompt": ""}'
call "a KV container that is not one" 422 PUT "/v1/chunks/$CHUNK/kv" -H 'Content-Type: application/octet-stream' --data-binary 'not a kv container'

echo "all calls answered as expected"

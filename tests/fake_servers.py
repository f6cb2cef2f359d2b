"""Local HTTP servers on 127.0.0.1 that answer in the Gemini API and OpenAI chat wire formats, so the
real `google-genai` and `openai` clients can be tested end to end without a network.

The bodies follow the providers' documented formats (Gemini: resumable upload with
`X-Goog-Upload-*` headers, `files/{id}` with `state`, `generateContent` with `candidates`,
`finishReason`, `usageMetadata`, errors as `{"error": {code, message, status, details}}` with a
`google.rpc.RetryInfo`; OpenAI: `chat.completion` with `choices`, `finish_reason`, `message.refusal`,
`usage`, and `retry-after` headers on 429). A test queues replies for the model endpoint; every
request is recorded (method, path, headers, body, time) for the test to inspect.
"""
from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class Reply:
    def __init__(self, status: int, body, headers: dict | None = None):
        self.status, self.body, self.headers = status, body, headers or {}


class FakeServer:
    """A threaded server; subclasses implement `route(method, path, query, headers, body) -> Reply`."""

    def __init__(self):
        self.replies: deque[Reply] = deque()
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _handle(self, method):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urlparse(self.path)
                with server.lock:
                    server.requests.append({"method": method, "path": url.path, "query": parse_qs(url.query),
                                            "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body, "time": time.monotonic()})
                reply = server.route(method, url.path, parse_qs(url.query), self.headers, body)
                data = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

            def do_DELETE(self):
                self._handle("DELETE")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def queue(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def next_reply(self, default: Reply) -> Reply:
        with self.lock:
            return self.replies.popleft() if self.replies else default

    def model_calls(self) -> list[dict]:
        return [r for r in self.requests if self.is_model_call(r)]


# --- Gemini API (generativelanguage.googleapis.com, v1 / v1beta) ---------------------------------------

class GeminiServer(FakeServer):
    """Files API (resumable upload, get, delete) and models/{model}:generateContent."""

    def __init__(self, polls_until_active: int = 1):
        super().__init__()
        self.polls_until_active = polls_until_active
        self.files: dict[str, dict] = {}
        self.n_uploads = 0
        self.version = "v1beta"

    def is_model_call(self, r: dict) -> bool:
        return r["path"].endswith(":generateContent")

    def _file(self, file_id: str, state: str) -> dict:
        return {"name": f"files/{file_id}", "mimeType": "video/mp4", "sizeBytes": "1024",
                "createTime": "2025-06-01T10:00:00.000000Z", "updateTime": "2025-06-01T10:00:00.000000Z",
                "expirationTime": "2025-06-03T10:00:00.000000Z", "sha256Hash": "ZmFrZQ==",
                "uri": f"{self.url}/{self.version}/files/{file_id}", "state": state, "source": "UPLOADED"}

    def route(self, method, path, query, headers, body) -> Reply:
        # The SDK picks the API version (google-genai 3.x: v1, older: v1beta); answer either.
        m = re.match(r"^/(upload/)?(v1beta|v1)/(.*)$", path)
        if not m:
            return Reply(404, {"error": {"code": 404, "message": f"not found: {path}", "status": "NOT_FOUND"}})
        self.version = m.group(2)
        path = "/" + (m.group(1) or "") + "VERSION/" + m.group(3)
        if method == "POST" and path == "/upload/VERSION/files" and "upload_id" not in query:
            assert headers.get("X-Goog-Upload-Protocol") == "resumable"
            assert headers.get("X-Goog-Upload-Command") == "start"
            with self.lock:   # uploads run concurrently: ids must not collide (len() would race)
                self.n_uploads += 1
                file_id = f"vid{self.n_uploads:04d}"
                self.files[file_id] = {"polls": 0}
            return Reply(200, {}, {"X-Goog-Upload-URL": f"{self.url}/upload/{self.version}/files?upload_id={file_id}"
                                                        "&upload_protocol=resumable"})
        if method == "POST" and path == "/upload/VERSION/files":
            file_id = query["upload_id"][0]
            if "finalize" in headers.get("X-Goog-Upload-Command", ""):
                return Reply(200, {"file": self._file(file_id, "PROCESSING")}, {"X-Goog-Upload-Status": "final"})
            return Reply(200, b"", {"X-Goog-Upload-Status": "active"})
        if path.startswith("/VERSION/files/"):
            file_id = path.rsplit("/", 1)[1]
            if method == "DELETE":
                self.files.pop(file_id, None)
                return Reply(200, {})
            entry = self.files[file_id]
            entry["polls"] += 1
            state = "ACTIVE" if entry["polls"] >= self.polls_until_active else "PROCESSING"
            return Reply(200, self._file(file_id, state))
        if method == "POST" and path.endswith(":generateContent"):
            return self.next_reply(gemini_ok(ANSWER))
        return Reply(404, {"error": {"code": 404, "message": f"not found: {path}", "status": "NOT_FOUND"}})


def gemini_ok(answer: dict | str, finish: str = "STOP", prompt_tokens: int = 15800, out_tokens: int = 420,
              thoughts: int = 900) -> Reply:
    text = answer if isinstance(answer, str) else json.dumps(answer)
    return Reply(200, {
        "candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": finish,
                        "index": 0}],
        "usageMetadata": {"promptTokenCount": prompt_tokens, "candidatesTokenCount": out_tokens,
                          "thoughtsTokenCount": thoughts, "totalTokenCount": prompt_tokens + out_tokens + thoughts,
                          "promptTokensDetails": [{"modality": "VIDEO", "tokenCount": prompt_tokens - 800},
                                                  {"modality": "TEXT", "tokenCount": 800}]},
        "modelVersion": "gemini-2.5-pro", "responseId": "fake-response-1"})


def gemini_error(code: int, status: str, message: str, retry_delay: str | None = None) -> Reply:
    details = [{"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_requests",
                                "quotaId": "GenerateRequestsPerMinutePerProjectPerModel"}]}]
    if retry_delay is not None:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay})
    return Reply(code, {"error": {"code": code, "message": message, "status": status,
                                  **({"details": details} if code == 429 else {})}})


def gemini_safety() -> Reply:
    return Reply(200, {
        "candidates": [{"finishReason": "SAFETY", "index": 0, "safetyRatings": [
            {"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH", "blocked": True}]}],
        "usageMetadata": {"promptTokenCount": 15800, "totalTokenCount": 15800},
        "modelVersion": "gemini-2.5-pro"})


def gemini_prompt_blocked() -> Reply:
    return Reply(200, {"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": []},
                       "usageMetadata": {"promptTokenCount": 15800, "totalTokenCount": 15800},
                       "modelVersion": "gemini-2.5-pro"})


# --- OpenAI chat completions (/v1/chat/completions) ---------------------------------------------

class OpenAIServer(FakeServer):
    def is_model_call(self, r: dict) -> bool:
        return r["path"].endswith("/chat/completions")

    def route(self, method, path, query, headers, body) -> Reply:
        if method == "POST" and path == "/v1/chat/completions":
            return self.next_reply(openai_ok(ANSWER))
        return Reply(404, {"error": {"message": f"Unknown request URL: {method} {path}",
                                     "type": "invalid_request_error", "param": None, "code": "unknown_url"}})


def openai_ok(answer: dict | str | None, finish: str = "stop", refusal: str | None = None,
              prompt_tokens: int = 9000, completion_tokens: int = 380) -> Reply:
    content = answer if isinstance(answer, str) or answer is None else json.dumps(answer)
    return Reply(200, {
        "id": "chatcmpl-fake1", "object": "chat.completion", "created": 1748772000, "model": "qwen2.5-vl-7b",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": refusal,
                                             "annotations": []},
                     "logprobs": None, "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
        "system_fingerprint": "fp_fake"})


def openai_error(code: int, message: str, retry_after: str | None = None, kind: str = "server_error") -> Reply:
    headers = {"retry-after": retry_after} if retry_after is not None else {}
    return Reply(code, {"error": {"message": message, "type": kind, "param": None, "code": None}}, headers)


ANSWER = {
    "observations": [
        {"code": "AU12", "description": "lip corners pulled up while answering", "start_s": 1.0, "end_s": 2.5,
         "intensity": 0.6},
        {"code": "touching or scratching face", "description": "right hand scratches the cheek", "start_s": 3.0,
         "end_s": 3.8, "intensity": 0.4}],
    "evidence_positive": ["relaxed open posture", "felt smile AU6+AU12 at 0:01"],
    "evidence_negative": ["brief gaze aversion"],
    "reflection": "The face scratch was first read as tension; by the prior rule it is itching, removed.",
    "verdict": "win",
    "confidence_positive": 0.72,
}

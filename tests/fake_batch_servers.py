"""Loopback servers speaking the two providers' batch formats, on top of the online ones in
fake_servers.py, so the real `google-genai` and `openai` clients are tested end to end.

- Gemini Batch API: `POST models/{model}:batchGenerateContent` with `batch.inputConfig.requests.requests`
  (each `{request, metadata}`) answers an operation named `batches/{id}` whose `metadata` is the
  GenerateContentBatch (`state` BATCH_STATE_PENDING / RUNNING / SUCCEEDED, `output.inlinedResponses.
  inlinedResponses`: `{response | error, metadata}`); `GET batches/{id}` answers the same.
- OpenAI Batch API: `POST /v1/files` (multipart, purpose=batch) stores the JSONL; `POST /v1/batches`
  creates a batch (status validating -> in_progress -> completed, `request_counts`); `GET
  /v1/files/{id}/content` serves the output file (`{id, custom_id, response: {status_code, request_id,
  body}, error}` per line) and the error file; `DELETE /v1/files/{id}`.

Each request of a job is answered from the queued replies, as the online servers answer a call
(a non-200 Reply becomes a failed item). The job stays running for `running_polls` state checks, or,
with `running_polls=None`, until the test calls `release()`.
"""
from __future__ import annotations

import json
import threading
from email.parser import BytesParser

from fake_servers import ANSWER, GeminiServer, OpenAIServer, Reply, gemini_ok, openai_ok


class BatchJobs:
    """What both servers share: jobs that finish after some polls or on `release()`."""

    def init_jobs(self, running_polls: int | None):
        self.running_polls = running_polls
        self.released = threading.Event()
        self.jobs: dict[str, dict] = {}

    def release(self) -> None:
        self.released.set()

    def poll(self, job: dict) -> bool:
        """Count one state check; True when the job is finished (answers computed once)."""
        job["polls"] += 1
        finished = self.released.is_set() if self.running_polls is None else job["polls"] > self.running_polls
        if finished and job["answers"] is None:
            job["answers"] = [self.next_reply(self.default_answer()) for _ in job["requests"]]
        return finished

    def created(self) -> int:
        return len(self.jobs)


class GeminiBatchServer(BatchJobs, GeminiServer):
    def __init__(self, running_polls: int | None = 1):
        GeminiServer.__init__(self, polls_until_active=1)
        self.init_jobs(running_polls)

    def default_answer(self) -> Reply:
        return gemini_ok(ANSWER)

    def _operation(self, job_id: str) -> dict:
        job = self.jobs[job_id]
        meta = {"@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatch",
                "model": job["model"], "displayName": job["displayName"], "name": f"batches/{job_id}",
                "createTime": "2025-06-01T10:00:00.000000Z", "updateTime": "2025-06-01T10:00:00.000000Z",
                "batchStats": {"requestCount": str(len(job["requests"]))}}
        if job["answers"] is None:
            meta["state"] = "BATCH_STATE_RUNNING" if job["polls"] else "BATCH_STATE_PENDING"
            return {"name": f"batches/{job_id}", "metadata": meta}
        items = []
        for request, reply in zip(job["requests"], job["answers"]):
            item = {"metadata": request.get("metadata", {})}
            if reply.status == 200:
                item["response"] = reply.body
            else:
                item["error"] = {"code": reply.status, "message": reply.body["error"]["message"]}
            items.append(item)
        output = {"inlinedResponses": {"inlinedResponses": items}}
        meta.update(state="BATCH_STATE_SUCCEEDED", endTime="2025-06-01T11:00:00.000000Z", output=output)
        return {"name": f"batches/{job_id}", "metadata": meta, "done": True,
                "response": {"@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatchOutput",
                             **output}}

    def route(self, method, path, query, headers, body) -> Reply:
        tail = path.split("/", 2)[-1] if path.startswith(("/v1beta/", "/v1/")) else ""
        if method == "POST" and tail.endswith(":batchGenerateContent"):
            batch = json.loads(body)["batch"]
            with self.lock:
                job_id = f"job{len(self.jobs) + 1}"
                self.jobs[job_id] = {"requests": batch["inputConfig"]["requests"]["requests"], "polls": 0,
                                     "answers": None, "model": tail.split(":")[0],
                                     "displayName": batch.get("displayName", "")}
            return Reply(200, self._operation(job_id))
        if method == "GET" and tail.startswith("batches/"):
            job_id = tail.split("/", 1)[1]
            if job_id not in self.jobs:
                return Reply(404, {"error": {"code": 404, "message": f"no batch {job_id}", "status": "NOT_FOUND"}})
            self.poll(self.jobs[job_id])
            return Reply(200, self._operation(job_id))
        return super().route(method, path, query, headers, body)


class OpenAIBatchServer(BatchJobs, OpenAIServer):
    def __init__(self, running_polls: int | None = 1):
        OpenAIServer.__init__(self)
        self.init_jobs(running_polls)
        self.files: dict[str, bytes] = {}
        self.deleted: list[str] = []

    def default_answer(self) -> Reply:
        return openai_ok(ANSWER)

    def _store(self, data: bytes, name: str) -> str:
        file_id = f"file-{len(self.files) + 1}"
        self.files[file_id] = data
        return file_id

    def _batch(self, batch_id: str) -> dict:
        job = self.jobs[batch_id]
        n = len(job["requests"])
        out = {"id": batch_id, "object": "batch", "endpoint": job["endpoint"], "errors": None,
               "input_file_id": job["input_file_id"], "completion_window": "24h", "created_at": 1748772000,
               "status": "validating" if not job["polls"] else "in_progress", "output_file_id": None,
               "error_file_id": None, "metadata": job["metadata"],
               "request_counts": {"total": n, "completed": 0, "failed": 0}}
        if job["answers"] is None:
            return out
        ok, bad = [], []
        for i, (request, reply) in enumerate(zip(job["requests"], job["answers"])):
            line = {"id": f"batch_req_{i}", "custom_id": request["custom_id"], "error": None,
                    "response": {"status_code": reply.status, "request_id": f"req_{i}", "body": reply.body}}
            (ok if reply.status == 200 else bad).append(json.dumps(line))
        if "output_file_id" not in job:
            job["output_file_id"] = self._store(("\n".join(ok) + "\n").encode(), "output") if ok else None
            job["error_file_id"] = self._store(("\n".join(bad) + "\n").encode(), "errors") if bad else None
        out.update(status="completed", completed_at=1748775600, output_file_id=job["output_file_id"],
                   error_file_id=job["error_file_id"], request_counts={"total": n, "completed": len(ok), "failed": len(bad)})
        return out

    def route(self, method, path, query, headers, body) -> Reply:
        if method == "POST" and path == "/v1/files":
            form = BytesParser().parsebytes(b"Content-Type: " + headers["Content-Type"].encode() + b"\r\n\r\n" + body)
            parts = {p.get_param("name", header="content-disposition"): p for p in form.get_payload()}
            assert parts["purpose"].get_payload(decode=True) == b"batch"
            data = parts["file"].get_payload(decode=True)
            with self.lock:
                file_id = self._store(data, "input")
            return Reply(200, {"id": file_id, "object": "file", "bytes": len(data), "created_at": 1748772000,
                               "filename": parts["file"].get_filename(), "purpose": "batch", "status": "processed",
                               "expires_at": None, "status_details": None})
        if method == "POST" and path == "/v1/batches":
            request = json.loads(body)
            lines = [json.loads(l) for l in self.files[request["input_file_id"]].decode().splitlines() if l.strip()]
            with self.lock:
                batch_id = f"batch_{len(self.jobs) + 1}"
                self.jobs[batch_id] = {"requests": lines, "polls": 0, "answers": None, "endpoint": request["endpoint"],
                                       "input_file_id": request["input_file_id"], "metadata": request.get("metadata")}
            return Reply(200, self._batch(batch_id))
        if method == "GET" and path.startswith("/v1/batches/"):
            batch_id = path.rsplit("/", 1)[1]
            self.poll(self.jobs[batch_id])
            return Reply(200, self._batch(batch_id))
        if method == "GET" and path.startswith("/v1/files/") and path.endswith("/content"):
            return Reply(200, self.files[path.split("/")[3]])
        if method == "DELETE" and path.startswith("/v1/files/"):
            file_id = path.rsplit("/", 1)[1]
            self.deleted.append(file_id)
            return Reply(200, {"id": file_id, "object": "file", "deleted": True})
        return super().route(method, path, query, headers, body)

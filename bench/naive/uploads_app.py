"""The seed's upload endpoints, written the tutorial way (benchmarks only):
- POST /upload: `data = await file.read()`, the whole file in memory, then written to disk;
- POST /upload-csv: `pandas.read_csv(file.file)`, the whole table in memory.
Run with `python -m bench.naive.uploads_app PORT STORAGE_DIR`."""

from __future__ import annotations

import hashlib
import sys
import uuid
from pathlib import Path
from typing import Any

from fastapi import FastAPI, UploadFile


def make_app(storage: Path) -> FastAPI:
    app = FastAPI()

    @app.post("/upload")
    async def upload(file: UploadFile) -> dict[str, Any]:
        data = await file.read()
        digest = hashlib.sha256(data).hexdigest()
        (storage / uuid.uuid4().hex).write_bytes(data)
        return {"size": len(data), "sha256": digest}

    @app.post("/upload-csv")
    async def upload_csv(file: UploadFile) -> dict[str, Any]:
        import pandas as pd  # type: ignore[import-untyped]

        frame = pd.read_csv(file.file)
        return {"size": file.size, "rows": len(frame)}

    return app


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(make_app(Path(sys.argv[2])), host="127.0.0.1", port=int(sys.argv[1]),
                log_level="warning")  # fmt: skip

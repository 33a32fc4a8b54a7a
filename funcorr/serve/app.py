"""The viewer's HTTP interface: the static page and a small JSON API over a :class:`Viewer`.

Endpoints (JSON unless noted; points in original image pixels):

* ``GET /`` the page; ``GET /static/*`` its script and style;
* ``GET /api/options`` backbones, checkpoints, functions and defaults for the selects;
* ``POST /api/images`` (multipart ``file``) -> image record; ``GET /api/images/{id}.png``;
* ``GET /api/pairs``, ``POST /api/pairs/load`` dataset pairs (``--data``);
* ``POST /api/prepare`` features of both images (cached);
* ``POST /api/click`` match of one source point: target point, modes, heat map (data URL);
* ``POST /api/discover`` top-K discovered matches; ``POST /api/labels`` label-transfer colouring;
* ``POST /api/export.json`` / ``POST /api/export.png`` the current result as a download.

The app only answers requests addressed to 127.0.0.1 / localhost (a guard against DNS
rebinding), and the page can only choose checkpoints the server was started with.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, File, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, Field
from starlette.middleware.trustedhost import TrustedHostMiddleware

from funcorr.images import InputError, from_pil
from funcorr.serve.viewer import ExportRequest, MatcherChoice, UnknownImage, Viewer, png_bytes
from funcorr.transfer import object_picture

STATIC = Path(__file__).resolve().parent / "static"
LOCAL_HOSTS = ("127.0.0.1", "localhost")
MAX_UPLOAD_BYTES = 64 * 1024 * 1024


class ChoiceBody(BaseModel):
    backbone: str
    checkpoint: str | None = None
    function: str | None = None

    def choice(self) -> MatcherChoice:
        return MatcherChoice(self.backbone, self.checkpoint or None, self.function or None)


class PairBody(BaseModel):
    source: str
    target: str
    matcher: ChoiceBody


class ClickBody(PairBody):
    x: float
    y: float
    heatmap: bool = True


class DiscoverBody(PairBody):
    k: int = Field(10, ge=1, le=200)


class ExportBody(PairBody):
    point: tuple[float, float] | None = None
    top_k: int | None = Field(None, ge=1, le=200)
    heatmap: bool = True
    labels: bool = False

    def request(self) -> ExportRequest:
        return ExportRequest(self.source, self.target, self.matcher.choice(), self.point, self.top_k, self.heatmap, self.labels)


class LoadPairBody(BaseModel):
    split: str
    index: int


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def create_app(viewer: Viewer, allowed_hosts: tuple[str, ...] = LOCAL_HOSTS) -> FastAPI:
    """A FastAPI app serving ``viewer`` (kept on ``app.state.viewer``; no module state).

    Requests whose Host header is not in ``allowed_hosts`` are refused.
    """
    app = FastAPI(title="funcorr viewer", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.viewer = viewer
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(InputError)
    @app.exception_handler(ValueError)
    async def bad_input(request: Request, err: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=400)

    @app.exception_handler(UnknownImage)
    async def unknown_image(request: Request, err: UnknownImage) -> JSONResponse:
        return JSONResponse({"detail": err.args[0]}, status_code=404)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/api/options")
    def options() -> dict:
        return viewer.options()

    @app.post("/api/images")
    def upload(file: Annotated[UploadFile, File()]) -> dict:
        data = file.file.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            raise HTTPException(413, f"Images larger than {MAX_UPLOAD_BYTES // 2**20} MiB are not accepted.")
        try:
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                image = from_pil(im)
        except (UnidentifiedImageError, OSError) as err:
            raise InputError(f"Could not decode {file.filename or 'the upload'} as an image: {err}") from err
        return viewer.add_image(image, file.filename or "upload").info()

    @app.get("/api/images/{key}.png")
    def image_png(key: str) -> Response:
        stored = viewer.image(key)
        return Response(png_bytes(object_picture(stored.image)), media_type="image/png", headers={"Cache-Control": "max-age=3600"})

    @app.get("/api/pairs")
    def pairs() -> dict:
        return viewer.pairs()

    @app.post("/api/pairs/load")
    def load_pair(body: LoadPairBody) -> dict:
        return viewer.load_pair(body.split, body.index)

    @app.post("/api/prepare")
    def prepare(body: PairBody) -> dict:
        return viewer.prepare_pair(body.source, body.target, body.matcher.choice())

    @app.post("/api/click")
    def click(body: ClickBody) -> dict:
        result = viewer.click(body.source, body.target, body.matcher.choice(), (body.x, body.y), heatmap=body.heatmap)
        answer = result.to_json()
        answer["heatmap"] = data_url(result.heatmap_png) if result.heatmap_png is not None else None
        return answer

    @app.post("/api/discover")
    def discover(body: DiscoverBody) -> dict:
        return viewer.top_matches(body.source, body.target, body.matcher.choice(), body.k)

    @app.post("/api/labels")
    def labels(body: PairBody) -> dict:
        left, right, ms = viewer.label_transfer(body.source, body.target, body.matcher.choice())
        return {"source": data_url(left), "target": data_url(right), "ms": ms}

    @app.post("/api/export.json")
    def export_json(body: ExportBody) -> JSONResponse:
        record = viewer.export_record(body.request())
        return JSONResponse(record, headers={"Content-Disposition": 'attachment; filename="funcorr_result.json"'})

    @app.post("/api/export.png")
    def export_png(body: ExportBody) -> Response:
        picture = viewer.export_picture(body.request())
        return Response(picture, media_type="image/png", headers={"Content-Disposition": 'attachment; filename="funcorr_result.png"'})

    return app

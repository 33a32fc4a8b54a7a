"""The viewer's HTTP interface: the static page and a small JSON API over a :class:`Viewer`.

Endpoints (JSON unless noted; points in original image pixels):

* ``GET /`` the page; ``GET /static/*`` its script and style;
* ``GET /api/options`` backbones, checkpoints, functions and defaults for the selects;
* ``POST /api/images`` (multipart ``file``) -> image record; ``GET /api/images/{id}.png``;
* ``GET /api/pairs``, ``POST /api/pairs/load`` dataset pairs (``--data``);
* ``POST /api/prepare`` features of both images (cached);
* ``POST /api/click`` match of one source point: target point, modes, heat map (data URL);
* ``POST /api/discover`` top-K discovered matches; ``POST /api/labels`` label-transfer colouring;
* ``POST /api/masks`` the object mask each image is matched within, as overlays (data URLs);
* ``POST /api/export.json`` / ``POST /api/export.png`` the current result as a download.

The app only answers requests addressed to 127.0.0.1 / localhost (a guard against DNS
rebinding), refuses state-changing requests sent by other origins (any web page the user
opens could otherwise post forms to it: a multipart POST needs no CORS preflight), and the
page can only choose checkpoints the server was started with. Uploads are refused above
:data:`~funcorr.images.MAX_PIXELS` before decoding (decompression bombs) and shrunk on
arrival to what the network can use, and the viewer's caches are bounded in bytes.
"""

from __future__ import annotations

import base64
import ctypes
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import FastAPI, File, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, Field
from starlette.middleware.trustedhost import TrustedHostMiddleware

from funcorr.images import MAX_PIXELS, InputError, LoadedImage, check_image_size, from_pil
from funcorr.serve.viewer import ExportRequest, MatcherChoice, UnknownImage, Viewer, png_bytes
from funcorr.viz import object_picture

STATIC = Path(__file__).resolve().parent / "static"
LOCAL_HOSTS = ("127.0.0.1", "localhost")
MAX_UPLOAD_BYTES = 64 * 1024 * 1024
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class ChoiceBody(BaseModel):
    backbone: str
    checkpoint: str | None = None
    function: str | None = None
    object_mask: str | None = None

    def choice(self) -> MatcherChoice:
        return MatcherChoice(
            self.backbone, self.checkpoint or None, self.function or None, self.object_mask or None
        )


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
    masks: bool = False

    def request(self) -> ExportRequest:
        return ExportRequest(
            self.source,
            self.target,
            self.matcher.choice(),
            self.point,
            self.top_k,
            self.heatmap,
            self.labels,
            self.masks,
        )


class LoadPairBody(BaseModel):
    split: str
    index: int


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def same_origin(headers: Mapping[str, str]) -> bool:
    """Whether a request comes from the viewer's own page, judged by ``Origin`` (sent by every
    current browser on cross-origin POSTs; ``null`` from sandboxed or privacy-stripped pages)
    or else ``Referer``, compared with ``Host``. A request with neither is not from a web page
    (curl, scripts, tests) and cannot be a cross-site forgery."""
    host = headers.get("host", "")
    origin = headers.get("origin")
    if origin is not None:
        return origin in (f"http://{host}", f"https://{host}")
    referer = headers.get("referer")
    if referer is not None:
        parts = urlsplit(referer)
        return parts.scheme in ("http", "https") and parts.netloc == host
    return True


def decode_upload(
    data: bytes, name: str, max_side: int
) -> tuple[LoadedImage, tuple[int, int] | None]:
    """An uploaded file as an image whose longest side is at most ``max_side``, and the
    uploaded (W, H) when it had to shrink. The size is checked from the header before any
    pixel is decoded: HTTP 413 above :data:`MAX_PIXELS`, 400 for what is not an image."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
            if width * height > MAX_PIXELS:
                raise HTTPException(
                    413,
                    f"{name} is {width}x{height} = {width * height / 1e6:.0f} megapixels; "
                    f"the viewer accepts at most {MAX_PIXELS / 1e6:.0f}.",
                )
            check_image_size(im.size, name)
            if im.format == "JPEG":
                im.draft(im.mode, (max_side, max_side))  # decode at a reduced scale directly
            if max(im.size) > max_side:
                im.thumbnail((max_side, max_side))
            im.load()
            image = from_pil(im)
    except Image.DecompressionBombError:
        raise HTTPException(
            413, f"{name} claims over {MAX_PIXELS / 1e6:.0f} megapixels (a decompression bomb?)."
        ) from None
    except (UnidentifiedImageError, OSError, ValueError) as err:
        if isinstance(err, InputError):
            raise
        raise InputError(f"Could not decode {name} as an image: {err}") from None
    if image.size == (width, height):
        return image, None
    release_freed_memory()
    return image, (width, height)


def release_freed_memory() -> None:
    """Return freed heap memory to the OS (glibc's ``malloc_trim``; a no-op elsewhere).

    The full-resolution decode of a large upload is freed at once, but glibc keeps freed blocks
    in the arena of the worker thread that used them: without this, a few 48-megapixel uploads
    left the server ~400 MB larger for good."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def create_app(viewer: Viewer, allowed_hosts: tuple[str, ...] = LOCAL_HOSTS) -> FastAPI:
    """A FastAPI app serving ``viewer`` (kept on ``app.state.viewer``; no module state).

    Requests whose Host header is not in ``allowed_hosts`` are refused, and so are POSTs
    from other origins (:func:`same_origin`).
    """
    app = FastAPI(title="funcorr viewer", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.viewer = viewer

    @app.middleware("http")
    async def refuse_other_origins(request: Request, call_next):
        if request.method not in SAFE_METHODS and not same_origin(request.headers):
            detail = "Cross-origin requests are refused: use the viewer's own page."
            return JSONResponse({"detail": detail}, status_code=403)
        return await call_next(request)

    # Added last, so it runs first: a request for a foreign host is refused before anything else.
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
            raise HTTPException(
                413, f"Images larger than {MAX_UPLOAD_BYTES // 2**20} MiB are not accepted."
            )
        name = file.filename or "upload"
        image, uploaded_size = decode_upload(data, name, viewer.upload_max_side())
        del data  # the encoded upload is not kept
        return viewer.add_image(image, name, uploaded_size).info()

    @app.get("/api/images/{key}.png")
    def image_png(key: str) -> Response:
        stored = viewer.image(key)
        return Response(
            png_bytes(object_picture(stored.image)),
            media_type="image/png",
            headers={"Cache-Control": "max-age=3600"},
        )

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
        result = viewer.click(
            body.source, body.target, body.matcher.choice(), (body.x, body.y), heatmap=body.heatmap
        )
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

    @app.post("/api/masks")
    def masks(body: PairBody) -> dict:
        found = viewer.object_masks(body.source, body.target, body.matcher.choice())
        return {role: {**info, "png": data_url(info["png"])} for role, info in found.items()}

    @app.post("/api/export.json")
    def export_json(body: ExportBody) -> JSONResponse:
        record = viewer.export_record(body.request())
        return JSONResponse(
            record, headers={"Content-Disposition": 'attachment; filename="funcorr_result.json"'}
        )

    @app.post("/api/export.png")
    def export_png(body: ExportBody) -> Response:
        picture = viewer.export_picture(body.request())
        return Response(
            picture,
            media_type="image/png",
            headers={"Content-Disposition": 'attachment; filename="funcorr_result.png"'},
        )

    return app

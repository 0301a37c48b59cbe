"""Two ASGI apps the peer comparison serves with ``uvicorn --workers 2``.

``fastapi_app``: the app a data scientist writes in ten lines: a pydantic body of records,
a DataFrame, ``predict``, a dict back (FastAPI serialises it). The model is the pickle at
``$PEER_MODEL``. ``bare``: the floor of the transport, a raw ASGI callable that reads the
body and answers a constant, with no model and no JSON parsing: what uvicorn and the
client socket alone cost.
"""

from __future__ import annotations

import os
import pickle
from typing import Any

import pandas as pd
from fastapi import FastAPI
from pydantic import BaseModel

model: Any = None
if "PEER_MODEL" in os.environ:
    with open(os.environ["PEER_MODEL"], "rb") as f:
        model = pickle.load(f)
fastapi_app = FastAPI()


class Body(BaseModel):
    instances: list[dict[str, float]]


@fastapi_app.post("/predict")
def predict(body: Body) -> dict[str, Any]:
    return {"predictions": model.predict(pd.DataFrame(body.instances)).tolist()}


_ANSWER = b'{"predictions":[0]}'
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"19")]


async def bare(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _ANSWER})

"""Errors the whole API answers the same way: a state change the table refuses (409), a missing row (404)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from fabzone.api.deps import api_error, request_language
from fabzone.crud import NotFoundError
from fabzone.states import TransitionError


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TransitionError)
    async def refused_transition(request: Request, exc: TransitionError) -> JSONResponse:
        err = api_error(409, exc.code, request_language(request), current=exc.current, target=exc.target)
        return JSONResponse(status_code=err.status_code, content={"detail": err.detail})

    @app.exception_handler(NotFoundError)
    async def not_found(request: Request, exc: NotFoundError) -> JSONResponse:
        err = api_error(404, exc.code, request_language(request), job=exc.key, machine=exc.key)
        return JSONResponse(status_code=err.status_code, content={"detail": err.detail})

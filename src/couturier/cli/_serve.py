"""``couturier serve``: the Open Inference Protocol service over the registry's champions
(``couturier.serving.server``: the app, and the process that serves it)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from couturier.cli._app import app, console, load_settings


class HttpServer(StrEnum):
    granian = "granian"
    uvicorn = "uvicorn"


@app.command("serve")
def serve_cmd(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
    alias: Annotated[str, typer.Option(help="Which alias of each model to serve.")] = "champion",
    follow: Annotated[
        bool,
        typer.Option(help="Follow champion, canary and shadow moves in the registry (hot swap)."),
    ] = True,
    canary_share: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="Share of requests a model's canary answers."),
    ] = 0.1,
    server: Annotated[
        HttpServer,
        typer.Option(help="granian (decision 0017), or uvicorn in this process."),
    ] = HttpServer.granian,
) -> None:
    """Serve every registered model's champion (KServe v2 REST: /v2/models/NAME/infer)."""
    from couturier.serving import server as serving_server

    load_settings()  # bad settings fail here, in one readable line, before a server starts
    if server is HttpServer.granian:
        host = serving_server.listen_address(host)  # a bad --host too
    console.print(f"listening on {host}:{port} ({server.value})")
    options = {"alias": alias, "follow": follow, "canary_share": canary_share}
    serving_server.run(
        host, port, options, "uvicorn" if server is HttpServer.uvicorn else "granian"
    )

"""``couturier serve``: the Open Inference Protocol service over the registry's champions."""

from __future__ import annotations

from typing import Annotated

import typer

from couturier.cli._app import app, console, load_settings
from couturier.registry import ModelRegistry


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
) -> None:
    """Serve every registered model's champion (KServe v2 REST: /v2/models/NAME/infer)."""
    import uvicorn

    from couturier.domain import load_domains
    from couturier.serving import ModelRepository, PredictionLog, Routing, create_app

    settings = load_settings()
    registry = ModelRegistry(settings)
    try:
        repository = ModelRepository.from_registry(registry, alias=alias)
    finally:
        registry.close()
    loaded = ", ".join(f"{n} v{repository.get(n).version}" for n in repository.names())
    console.print(f"serving {loaded or 'no models yet (register one first)'} on {host}:{port}")
    for name, problem in repository.problems.items():
        console.print(f"[red]not serving {name}:[/] {problem}")
    domains = list(load_domains().values())
    app = create_app(
        repository,
        expected=repository.names(),
        registry=lambda: ModelRegistry(settings),
        follow=follow,
        domains=domains,
        settings=settings,
        routing=Routing(canary_share=canary_share),
        admin_token=settings.admin_token,
        shadow_log=PredictionLog(
            settings.paths.predictions / "shadow", fsync=settings.predictions_fsync
        ),
    )
    console.print(f"domains mounted: {', '.join(d.name for d in domains if d.service) or 'none'}")
    uvicorn.run(app, host=host, port=port, log_level="warning")

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
    routers = []
    try:
        repository = ModelRepository.from_registry(registry, alias=alias)
        for domain in load_domains().values():
            mounted = domain.service(settings, registry) if domain.service else None
            if mounted is not None:
                routers.append(mounted)
                console.print(f"{domain.name}: its routes are mounted")
    finally:
        registry.close()
    loaded = ", ".join(f"{n} v{repository.get(n).version}" for n in repository.names())
    console.print(f"serving {loaded or 'no models yet (register one first)'} on {host}:{port}")
    uvicorn.run(
        create_app(
            repository,
            expected=repository.names(),
            registry=lambda: ModelRegistry(settings),
            follow=follow,
            routers=routers,
            routing=Routing(canary_share=canary_share),
            admin_token=settings.admin_token,
            shadow_log=PredictionLog(
                settings.paths.predictions / "shadow", fsync=settings.predictions_fsync
            ),
        ),
        host=host,
        port=port,
        log_level="warning",
    )

"""Scale-out adapters: `ray_engine` (extract and teach on a Ray cluster) is the only module that imports
ray; `config` is light and imported by the commands, which load the engine through `load_ray_engine`."""
from hiddenemo.errors import UserError


def load_ray_engine():
    """`hiddenemo.dist.ray_engine`, or a clear error when Ray is not installed."""
    try:
        from hiddenemo.dist import ray_engine
    except ImportError as e:
        if (e.name or "").split(".")[0] != "ray":
            raise
        raise UserError("--engine ray needs Ray: pip install 'hiddenemo[ray]' (the same version on every "
                        "node of the cluster)") from e
    return ray_engine

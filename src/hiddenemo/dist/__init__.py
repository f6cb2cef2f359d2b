"""Scale-out adapters: `ray_engine` (extract and teach on a Ray cluster) is the only module that imports
ray; `config` is light and imported by the commands."""

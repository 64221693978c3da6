"""The demo driver (``lcrec demo`` / ``make demo``): the pipeline steps in order (:mod:`lcrec.demo.run`), then the
serving part on 127.0.0.1 (:mod:`lcrec.demo.serving`)."""

from lcrec.demo.run import run_demo, user_list_lines

__all__ = ["run_demo", "user_list_lines"]

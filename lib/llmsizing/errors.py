"""Exception hierarchy.

Every error the library raises on bad input is a ``SizingError``; the command line prints
its message on one line and exits with code 2. "Does not fit" is not an error: estimators
return it as a result (``fits: false``). ``NoFitError`` exists for callers that insist on a
feasible answer (for example a planner asked for a layout that cannot exist).
"""


class SizingError(Exception):
    """Base class: a problem with the user's input, a catalog or a scenario."""


class CatalogError(SizingError):
    """A catalog entry (model, GPU, instance, precision) is unknown or malformed."""


class ConfigError(CatalogError):
    """A Hugging Face ``config.json`` is unreadable or lacks a field the math needs."""


class ScenarioError(SizingError, ValueError):
    """A scenario or command-line value is out of range or of the wrong type."""


class NoFitError(SizingError):
    """No layout can satisfy the request (an expected outcome, reported not crashed)."""


class RenderError(SizingError):
    """Executing or rendering a report notebook failed."""

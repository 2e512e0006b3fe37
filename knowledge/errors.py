"""Errors: one base class; every message says what happened and how to fix it."""


class PersonaError(Exception):
    """Base class for every error this project raises on purpose."""


class ConfigError(PersonaError):
    """A setting is missing or invalid."""


class UnknownPersonaError(PersonaError):
    """The persona id is not bundled and was never ingested."""


class InputError(PersonaError):
    """The question (or another input) cannot be used as given."""


class IndexMissingError(PersonaError):
    """The persona has no index yet."""


class BackendError(PersonaError):
    """The answer backend failed (after its retries)."""


class IngestError(PersonaError):
    """An ingest could not run."""


class StoreError(PersonaError):
    """The vector store could not be reached or used."""


class ContextWindowError(InputError):
    """The question (with the persona's instructions and the answer's reserve) does not fit the model's window."""

"""The reader's exceptions."""


class TLoRAError(Exception):
    """Base class of everything this package raises about a file."""


class CorruptFile(TLoRAError, ValueError):
    """The file breaks a rule of docs/FORMAT.md: damaged, truncated, hostile or written wrongly.

    The message starts with the path and names the first rule broken.
    """


class UnsupportedFile(TLoRAError):
    """A valid file this reader cannot read: a newer major version, or required features it does not know."""


def corrupt(path, problem):
    return CorruptFile(f"{path}: {problem}")

class PkConverter:
    """Primary keys in URLs: 1 to 18 digits, so an absurd id is a plain 404 instead of a bigint overflow."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


def as_pk(value: object) -> int | None:
    """A user-supplied id as a bigint primary key, or None if it cannot be one."""
    text = str(value or "").strip()
    if text.isascii() and text.isdigit() and 0 < len(text) <= 18:
        return int(text)
    return None

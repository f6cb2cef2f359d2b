"""One exception type for problems the user can fix: the CLI prints its message, not a traceback."""
import errno

# A full, over-quota, read-only or forbidden output: the fix is on that disk, not in the input.
DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


class UserError(Exception):
    """Bad input, a missing file or an unbuilt stage; the message says which and what to do."""


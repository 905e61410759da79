#!/usr/bin/env python3
"""Run a command on a new pseudo-terminal, as if typed in an interactive shell.

    integration/pty.py CMD [ARG...]

The command's terminal output is copied to stdout and this exits with the
command's status (128+N when killed by signal N). Nothing is ever written to
the terminal's input: the command sees a terminal that stays open but on which
nobody types, so it is not told "end of input" as script(1) does when its own
stdin is not a terminal (podman run -it then races its attach against the EOF
and may drop the output).
"""
import os
import sys


def main():
    if len(sys.argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    pid, master = os.forkpty()
    if pid == 0:
        try:
            os.execvp(sys.argv[1], sys.argv[1:])
        finally:
            os._exit(127)
    out = sys.stdout.buffer
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: every process holding the terminal has closed it
            break
        if not data:
            break
        out.write(data)
        out.flush()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


if __name__ == "__main__":
    sys.exit(main())

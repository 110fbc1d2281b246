#!/usr/bin/env python3
"""Runs a command on a pseudo-terminal COLS columns wide and prints the screen it leaves, as a
terminal shows it: \\r returns to the row's start, \\n starts a row, a character written past the
last column wraps onto a new row. First "redraws N": the \\r that went back over a row in
place (not ending a line); then one line per row, "|" before a row the program started and
"+" before one the terminal wrapped onto. Exits with the command's status, or 77 (ctest's
skip) when no pseudo-terminal can be opened.
usage: tty_screen.py COLS COMMAND [ARG...]"""
import fcntl
import os
import pty
import struct
import sys
import termios


def screen(data, cols):
    rows, wrapped, col = [[]], [False], 0
    for ch in data.decode("utf-8", "replace"):
        if ch == "\r":
            col = 0
        elif ch == "\n":
            rows.append([])
            wrapped.append(False)
            col = 0
        elif ch >= " ":
            if col == cols:
                rows.append([])
                wrapped.append(True)
                col = 0
            row = rows[-1]
            row.extend(" " * (col + 1 - len(row)))
            row[col] = ch
            col += 1
    return [("+" if w else "|") + "".join(r).rstrip() for r, w in zip(rows, wrapped)]


def main():
    cols, argv = int(sys.argv[1]), sys.argv[2:]
    try:
        pid, master = pty.fork()
    except OSError as e:
        print(f"SKIP: no pseudo-terminal can be opened here ({e})", file=sys.stderr)
        return 77
    if pid == 0:
        fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack("HHHH", 24, cols, 0, 0))
        os.environ.pop("COLUMNS", None)
        os.execvp(argv[0], argv)
    data = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the command closed its side
            break
        if not chunk:
            break
        data += chunk
    _, status = os.waitpid(pid, 0)
    print("redraws", len(data.replace(b"\r\n", b"").split(b"\r")) - 1)
    for r in screen(data, cols):
        print(r)
    return os.waitstatus_to_exitcode(status)


sys.exit(main())

"""Runs a command on a real pseudo-terminal (so the child's stdin is a TTY),
answers its first prompt with argv[1] once the prompt text argv[2] appears,
and prints everything the terminal showed; exits with the child's code.

    python3 tests/helpers/on-tty.py ANSWER PROMPT -- CMD ARGS...
"""
import os, pty, select, sys

answer, prompt = sys.argv[1], sys.argv[2].encode()
cmd = sys.argv[sys.argv.index('--') + 1:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(cmd[0], cmd)
seen, answered = b'', False
while True:
    try:
        ready, _, _ = select.select([fd], [], [], 30)
        if not ready:
            break
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    seen += chunk
    if not answered and prompt in seen:
        os.write(fd, (answer + '\n').encode())
        answered = True
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode('utf-8', 'replace'))
sys.stdout.write('\n[answered]\n' if answered else '\n[no prompt]\n')
sys.exit(os.waitstatus_to_exitcode(status))

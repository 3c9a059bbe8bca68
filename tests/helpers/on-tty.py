"""Runs a command on a real pseudo-terminal (so the child's stdin is a TTY),
answers its prompts in order: each ANSWER is typed once its PROMPT text has
appeared (again) after the previous answer; prints everything the terminal
showed; exits with the child's code.

    python3 tests/helpers/on-tty.py ANSWER PROMPT [ANSWER PROMPT ...] -- CMD ARGS...
"""
import os, pty, select, sys

sep = sys.argv.index('--')
pairs = sys.argv[1:sep]
steps = [(pairs[i], pairs[i + 1].encode()) for i in range(0, len(pairs), 2)]
cmd = sys.argv[sep + 1:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(cmd[0], cmd)
seen, mark, done = b'', 0, 0
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
    while done < len(steps) and steps[done][1] in seen[mark:]:
        mark = seen.index(steps[done][1], mark) + len(steps[done][1])
        answer = steps[done][0]
        os.write(fd, (answer if answer.endswith('\n') else answer + '\n').encode())
        done += 1
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode('utf-8', 'replace'))
sys.stdout.write('\n[answered]\n' if steps and done == len(steps) else '\n[no prompt]\n')
sys.exit(os.waitstatus_to_exitcode(status))

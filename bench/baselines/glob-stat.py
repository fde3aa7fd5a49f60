# A typical Python diagnosis script: glob the run's staging files, stat each.
# Usage: python3 glob-stat.py DIR KEY
import glob
import os
import sys

directory, key = sys.argv[1], sys.argv[2]
paths = glob.glob(os.path.join(glob.escape(directory), glob.escape(key) + ".*.csv"))
for path in paths:
    os.stat(path)
print(len(paths))

"""Code that runs beside student code, in the sandboxed student process.

Nothing in this subpackage may import hidden checks or reference solutions: the student's code
shares this process and can read everything in its memory.
"""

"""The command-line tools of mmifr and their shared library (:mod:`tools.lib`).

A regular package, not a namespace one: the scripts put the folder above this one on
``sys.path`` (the checkout, or ``mmifr/.mim`` in a wheel install) and import ``tools.lib``, and a
regular package found first on ``sys.path`` cannot be shadowed by another ``tools`` installed
elsewhere.
"""

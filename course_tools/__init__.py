"""Course staff's tools, outside the package students import: offline slides and the static course site
(:mod:`.publish`, :mod:`.slides`, with the vendored web libraries in ``static/`` and nbconvert templates in
``templates/``).  ``course.py`` runs them in the course's environment; they are not part of the
``lecture_utils`` wheel, so ``import lecture_utils`` never loads nbconvert."""

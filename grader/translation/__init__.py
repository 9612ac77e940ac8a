"""Other languages' editions of the course, built from the English notebooks and gettext catalogs.

segments: what in a notebook is translated (markdown blocks, comments, strings people read), and putting
          translations back without changing a code token;
catalog:  one PO file per notebook: merging with the English (new, fuzzy, obsolete) and completeness;
edition:  the listed notebooks of an edition built into <language>/lectures and <language>/exercises;
handin:   recognising a translated hand-in, so it is graded exactly as the English one;
glossary: the fixed terms every catalog of a language uses.
"""

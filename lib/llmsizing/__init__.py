"""llmsizing: hardware sizing for serving and fine-tuning large language models.

The library holds all the knowledge (catalogs, formulas, planner); notebooks and the
command line are thin faces over it. Import is light: nothing heavy is imported here.
"""

__version__ = "0.1.0"

"""learnlog: records what learners do with learning content and turns it into progress."""

__version__ = "0.1.0"

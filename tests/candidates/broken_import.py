"""A candidate file that does not import."""
import a_module_that_does_not_exist  # noqa: F401

"""Returns an object whose __repr__, __str__, __eq__ and __bool__ raise."""


class Touchy:
    def __repr__(self):
        raise RuntimeError("do not look at me")

    __str__ = __repr__

    def __eq__(self, other):
        raise RuntimeError("do not compare me")

    def __bool__(self):
        raise RuntimeError("do not test me")


def get_load_balance_assignment(sizes, num_gpus=2):
    return Touchy()

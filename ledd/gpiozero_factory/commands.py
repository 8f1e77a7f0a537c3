""":class:`LeddVerbs`: ledd's verbs as methods of the factory, ``factory.ledd.on("red")``.

The methods are :class:`ledd.client.Client`'s, made from the same table
(:data:`ledd.verbs.VERBS`), so a verb ledd gains is a method here at once and
no verb is spelled out in the factory. Each runs as one exchange of the
factory (in order, errors as gpiozero's), and a reply that is ledd's state
goes into the factory's cache before the method returns it.
"""

from ledd.verbs import add_methods

__all__ = ["LeddVerbs"]


class LeddVerbs:
    """ledd's verbs, run through ``factory``."""

    def __init__(self, factory):
        self._factory = factory

    def _run_verb(self, verb, values):
        reply = self._factory.request(verb.name, *verb.words(values))
        if "seq" in reply and "leds" in reply:
            self._factory.take_state(reply)
        return reply


add_methods(LeddVerbs)

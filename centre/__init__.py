"""corehour's shared kernel: rules and models every part may import; it imports none of them."""

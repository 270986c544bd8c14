// Debug page: placeholder until it is written.

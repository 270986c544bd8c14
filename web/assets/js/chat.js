// Chat page: placeholder until it is written.

"""What custody asks of the operating system: durable writes of its own files and the inter-
process lock (``files``), writing below a folder without following links or leaving it
(``paths``), and the explicit minimal environment of every child process (``children``).

Imports only custody.errors and custody.i18n (the language of its messages).
"""

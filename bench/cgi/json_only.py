#!/usr/bin/python3 -IS
# bench/web.py's reference for POSTs: the empty CGI plus `import json` (what a POST must pay).
import json
import sys
sys.stdout.write('Status: 200 OK\r\nContent-Type: application/json\r\nContent-Length: 3\r\n\r\n' + json.dumps({}) + '\n')

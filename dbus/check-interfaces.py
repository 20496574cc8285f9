#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Lint the introspection XML and the system bus policy of asyncd.

Usage: check-interfaces.py POLICY.conf INTERFACE.xml... [--live INTROSPECTION.xml...]

Checks that
  * each XML file is well-formed, holds exactly one <interface> named like the
    file, documents the interface and each member with a gdbus-codegen style
    comment, uses valid D-Bus signatures, gives every method argument an
    explicit direction and every property access="read" plus an
    org.freedesktop.DBus.Property.EmitsChangedSignal annotation;
  * the published version 1 API (below, from the D-Bus contract) is still
    there, unchanged: members may be added, never changed or removed;
  * the policy lets root own the name, denies sending to it by default first,
    then allows exactly the methods of the interfaces, one by one, and last
    keeps the Completed signal (it carries results) from everybody but root;
  * with --live, that the introspection data a running daemon returned (the
    output of org.freedesktop.DBus.Introspectable.Introspect on its objects)
    describes exactly these interfaces: the same members, argument names,
    types and directions, property types, access and EmitsChangedSignal
    values, and no member that the files do not document.
Prints one line per problem and exits 1 if there was any.
"""

import os
import sys
import xml.etree.ElementTree as ET

BUS_NAME = 'io.asyncd1'
# Only the owner and root may read a job's results, and Completed signals carry them.
RESULTS_SIGNAL_DENY = {'receive_sender': BUS_NAME, 'receive_interface': 'io.asyncd1.Job',
                       'receive_member': 'Completed', 'receive_type': 'signal'}
ECS = 'org.freedesktop.DBus.Property.EmitsChangedSignal'

# The published contract: (in-signature, out-signature, argument names) for
# methods, (signature, names) for signals, (type, EmitsChangedSignal) for
# properties.
API_V1 = {
    'io.asyncd1.Manager': {
        'methods': {
            'SubmitJob': (['a(ss)', 'h', 'a{sv}', 't'], ['t', 'o'],
                          ['tasks', 'directory', 'options', 'flags', 'id', 'job']),
            'CancelJob': (['t'], [], ['id']),
            'GetJob': (['t'], ['o'], ['id', 'job']),
            'ListJobs': ([], ['a(tossuuuuu)'], ['jobs']),
        },
        'signals': {
            'JobNew': (['t', 'o'], ['id', 'job']),
            'JobFinished': (['t', 'o', 's'], ['id', 'job', 'state']),
        },
        'properties': {
            'Version': ('s', 'const'),
            'ActiveTransfers': ('u', 'false'),
        },
    },
    'io.asyncd1.Job': {
        'methods': {
            'Cancel': ([], [], []),
            'GetResults': (['u', 'u'], ['a(uusutss)', 'u'],
                           ['cursor', 'max', 'results', 'next_cursor']),
            # Compatible extensions of the spec (new methods).
            'AddTasks': (['a(ss)', 't'], [], ['tasks', 'flags']),
            'GetTasks': (['u', 'u'], ['a(ss)', 'u'],
                         ['cursor', 'max', 'tasks', 'next_cursor']),
        },
        'signals': {
            'Completed': (['a(uusutss)'], ['results']),
            'Finished': (['s', 'u', 'u', 'u', 'u'],
                         ['state', 'ok', 'not_found', 'error', 'cancelled']),
        },
        'properties': {
            'Id': ('t', 'const'),
            'Name': ('s', 'const'),
            'Owner': ('u', 'const'),
            'State': ('s', 'true'),
            'Total': ('u', 'true'),     # changes only for jobs submitted open (AddTasks)
            'Ok': ('u', 'true'),
            'NotFound': ('u', 'true'),
            'Error': ('u', 'true'),
            'Cancelled': ('u', 'true'),
            'BytesDownloaded': ('t', 'true'),
            'Concurrency': ('u', 'const'),
            'CreatedUSec': ('t', 'const'),
            'FinishedUSec': ('t', 'true'),
        },
    },
}

# Standard interfaces the policy opens to everybody: interface -> members
# (None = the whole interface).
STANDARD_ALLOWED = {
    'org.freedesktop.DBus.Introspectable': None,
    'org.freedesktop.DBus.Peer': None,
    'org.freedesktop.DBus.Properties': {'Get', 'GetAll'},
    'org.freedesktop.DBus.ObjectManager': {'GetManagedObjects'},
}

problems = []


def problem(where, msg):
    problems.append(f'{where}: {msg}')


def parse_one_type(sig, i, depth=0):
    """Return the index after the single complete type starting at sig[i]."""
    if i >= len(sig) or depth > 64:
        raise ValueError('truncated signature')
    c = sig[i]
    if c in 'ybnqiuxtdsogh' or c == 'v':
        return i + 1
    if c == 'a':
        if i + 1 < len(sig) and sig[i + 1] == '{':
            j = i + 2
            if j >= len(sig) or sig[j] not in 'ybnqiuxtdsogh':
                raise ValueError('dict key must be a basic type')
            j = parse_one_type(sig, j + 1, depth + 1)
            if j >= len(sig) or sig[j] != '}':
                raise ValueError('dict entry must have exactly two types')
            return j + 1
        return parse_one_type(sig, i + 1, depth + 1)
    if c == '(':
        j = i + 1
        if j < len(sig) and sig[j] == ')':
            raise ValueError('empty struct')
        while j < len(sig) and sig[j] != ')':
            j = parse_one_type(sig, j, depth + 1)
        if j >= len(sig):
            raise ValueError('unterminated struct')
        return j + 1
    raise ValueError(f'invalid type code {c!r}')


def valid_single_type(sig):
    try:
        return parse_one_type(sig, 0) == len(sig)
    except ValueError:
        return False


def preceding_comment(parent, element):
    """The comment right before element among parent's children (or None)."""
    prev = None
    for child in parent:
        if child is element:
            return prev
        prev = child if child.tag is ET.Comment else None
    return None


def check_doc(where, parent, element, name):
    comment = preceding_comment(parent, element)
    if comment is None or not comment.text.strip().startswith(name + ':'):
        problem(where, f'{name}: missing gdbus-codegen doc comment '
                       f'("<!-- {name}: ... -->") right before the element')


def check_interface_file(path):
    where = os.path.basename(path)
    parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True))
    try:
        root = ET.parse(path, parser=parser).getroot()
    except ET.ParseError as e:
        problem(where, f'not well-formed: {e}')
        return None
    if root.tag != 'node':
        problem(where, f'root element is <{root.tag}>, not <node>')
    interfaces = root.findall('interface')
    if len(interfaces) != 1:
        problem(where, f'{len(interfaces)} <interface> elements, expected 1')
        return None
    iface = interfaces[0]
    name = iface.get('name', '')
    if where != name + '.xml':
        problem(where, f'interface {name!r} does not match the file name')
    check_doc(where, root, iface, name)

    found = {'methods': {}, 'signals': {}, 'properties': {}}
    for el in iface:
        if el.tag is ET.Comment:
            continue
        member = el.get('name', '')
        w = f'{where}: {name}.{member}'
        if el.tag in ('method', 'signal'):
            check_doc(where, iface, el, member)
            ins, outs, names = [], [], []
            for arg in el.findall('arg'):
                t = arg.get('type', '')
                d = arg.get('direction')
                if not arg.get('name'):
                    problem(w, 'argument without a name')
                if not valid_single_type(t):
                    problem(w, f'invalid argument type {t!r}')
                if el.tag == 'method' and d not in ('in', 'out'):
                    problem(w, f'argument {arg.get("name")!r} needs direction="in" or "out"')
                if el.tag == 'signal' and d not in (None, 'out'):
                    problem(w, 'signal arguments have no direction="in"')
                (outs if d == 'out' else ins).append(t)
                names.append(arg.get('name'))
            if el.tag == 'method':
                found['methods'][member] = (ins, outs, names)
            else:
                found['signals'][member] = (ins + outs, names)
        elif el.tag == 'property':
            check_doc(where, iface, el, member)
            t = el.get('type', '')
            if not valid_single_type(t):
                problem(w, f'invalid property type {t!r}')
            if el.get('access') != 'read':
                problem(w, f'access={el.get("access")!r}, expected "read"')
            ecs = [a.get('value') for a in el.findall('annotation') if a.get('name') == ECS]
            if len(ecs) != 1 or ecs[0] not in ('true', 'invalidates', 'const', 'false'):
                problem(w, f'needs exactly one valid {ECS} annotation')
            found['properties'][member] = (t, ecs[0] if ecs else None)
        elif el.tag != 'annotation':
            problem(w, f'unexpected element <{el.tag}>')

    expected = API_V1.get(name)
    if expected is None:
        problem(where, f'unknown interface {name!r}')
    else:
        for kind, members in expected.items():
            for member, want in members.items():
                have = found[kind].get(member)
                if have is None:
                    problem(where, f'published {kind[:-1]} {name}.{member} is missing')
                elif tuple(have) != tuple(want):
                    problem(where, f'published {kind[:-1]} {name}.{member} changed: '
                                   f'{have} != {want}')
    return name, found


def check_policy(path, methods):
    where = os.path.basename(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        problem(where, f'not well-formed: {e}')
        return
    root_policy = [p for p in root.findall('policy') if p.get('user') == 'root']
    if not any(a.get('own') == BUS_NAME for p in root_policy for a in p.findall('allow')):
        problem(where, f'root may not own {BUS_NAME}')
    if any(a.get('own') for p in root.findall('policy') if p.get('user') != 'root'
           for a in p.findall('allow')):
        problem(where, 'someone other than root may own a name')
    defaults = [p for p in root.findall('policy') if p.get('context') == 'default']
    if len(defaults) != 1:
        problem(where, f'{len(defaults)} default-context policies, expected 1')
        return
    rules = list(defaults[0])
    if not rules or rules[0].tag != 'deny' or rules[0].attrib != {'send_destination': BUS_NAME}:
        problem(where, f'the default policy must start with <deny send_destination="{BUS_NAME}"/>')
    allowed = set()
    for r in rules[1:]:
        if r.tag == 'deny' and r.attrib == RESULTS_SIGNAL_DENY:
            continue
        if r.tag != 'allow':
            problem(where, f'unexpected <{r.tag}> in the default policy')
            continue
        if 'send_destination' not in r.attrib:
            continue
        if r.get('send_destination') != BUS_NAME:
            problem(where, f'rule for a foreign destination: {r.attrib}')
            continue
        iface, member = r.get('send_interface'), r.get('send_member')
        if iface is None:
            problem(where, f'rule without send_interface: {r.attrib}')
            continue
        if set(r.attrib) - {'send_destination', 'send_interface', 'send_member'}:
            problem(where, f'unexpected attributes: {r.attrib}')
        if iface in STANDARD_ALLOWED:
            members = STANDARD_ALLOWED[iface]
            if members is not None and member not in members:
                problem(where, f'{iface}.{member} must not be allowed')
            if members is not None and member is None:
                problem(where, f'all of {iface} is allowed, only {sorted(members)} may be')
            continue
        if member is None:
            problem(where, f'{iface}: list the methods one by one, not the whole interface')
            continue
        allowed.add((iface, member))
        if (iface, member) not in methods:
            problem(where, f'allows {iface}.{member}, which is not a method of the API')
    for iface, member in sorted(methods - allowed):
        problem(where, f'method {iface}.{member} is not allowed for everybody')
    if not rules or rules[-1].attrib != RESULTS_SIGNAL_DENY or rules[-1].tag != 'deny':
        problem(where, f'the default policy must end with <deny {RESULTS_SIGNAL_DENY}/>: Completed carries results')
    for iface, members in STANDARD_ALLOWED.items():
        for m in (members or {None}):
            ok = any(r.tag == 'allow' and r.get('send_destination') == BUS_NAME
                     and r.get('send_interface') == iface and r.get('send_member') == m
                     for r in rules)
            if not ok:
                problem(where, f'{iface}{"." + m if m else ""} is not allowed for everybody')


def describe_interface(iface):
    """A comparable description of an <interface> element."""
    members = {}
    for el in iface:
        if el.tag not in ('method', 'signal', 'property'):
            continue
        if el.tag == 'property':
            ecs = [a.get('value') for a in el.findall('annotation') if a.get('name') == ECS]
            members[(el.tag, el.get('name'))] = (el.get('type'), el.get('access'),
                                                 ecs[0] if ecs else 'true')
        else:
            args = [(a.get('name'), a.get('type'),
                     a.get('direction') or ('in' if el.tag == 'method' else 'out'))
                    for a in el.findall('arg')]
            members[(el.tag, el.get('name'))] = tuple(args)
    return members


def check_live(documented, paths):
    """Compare the documented interfaces with introspection data of a running daemon."""
    live = {}
    for path in paths:
        where = os.path.basename(path)
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as e:
            problem(where, f'introspection data not well-formed: {e}')
            continue
        for iface in root.findall('interface'):
            live[iface.get('name')] = describe_interface(iface)
    for name, doc in sorted(documented.items()):
        have = live.get(name)
        if have is None:
            problem('live', f'the daemon does not implement {name}')
            continue
        for key in sorted(set(doc) | set(have)):
            if key not in have:
                problem('live', f'{name}: {key[0]} {key[1]} is documented but not implemented')
            elif key not in doc:
                problem('live', f'{name}: {key[0]} {key[1]} is implemented but not documented')
            elif doc[key] != have[key]:
                problem('live', f'{name}: {key[0]} {key[1]} differs: documented {doc[key]}, '
                                f'implemented {have[key]}')


def main(argv):
    args = argv[1:]
    live_paths = []
    if '--live' in args:
        i = args.index('--live')
        args, live_paths = args[:i], args[i + 1:]
    if len(args) < 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    methods = set()
    seen = set()
    documented = {}
    for path in args[1:]:
        r = check_interface_file(path)
        if r:
            name, found = r
            seen.add(name)
            methods |= {(name, m) for m in found['methods']}
            parser = ET.XMLParser(target=ET.TreeBuilder())
            iface = ET.parse(path, parser=parser).getroot().find('interface')
            documented[name] = describe_interface(iface)
    for name in sorted(set(API_V1) - seen):
        problem('API', f'interface {name} has no XML file')
    check_policy(args[0], methods)
    if live_paths:
        check_live(documented, live_paths)
    for p in problems:
        print(p)
    if problems:
        return 1
    print(f'ok: {len(seen)} interfaces, {len(methods)} methods, policy consistent'
          + (', matches the running daemon' if live_paths else ''))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))

"""Writes one count matrix (rows = projectors, columns = samples) the way the
lab's Python tools do: as CSV (numpy.savetxt with ','), as .txt, as .xlsx
(openpyxl), as .ods (odfpy) and as .xls (xlwt), each sheet named `runB` after
a first sheet `other` that holds something else.

usage: spreadsheets.py DIR N COLUMNS SEED
         writes DIR/lab.{csv,txt,xlsx,ods,xls} with n² rows (nopovm)
       spreadsheets.py hole DIR
         writes DIR/hole.xlsx: the same shape with cell C7 of sheet runB empty
       spreadsheets.py chi2 N COUNTS_NPY RHO_NPY [RHO_NPY ...]
         prints Pearson's chi² (nopovm frequencies) of each rho
"""
import sys

import numpy as np


def matrix(n, cols, seed):
    rng = np.random.default_rng(seed)
    out = rng.poisson(rng.uniform(50, 500, size=(n * n, cols))).astype(float)
    out[0, 0] += 0.5  # one non-integer count
    return out


def write_all(d, n, cols, seed):
    m = matrix(n, cols, seed)
    np.savetxt(f"{d}/lab.csv", m, delimiter=",", fmt="%.17g")
    np.savetxt(f"{d}/lab.txt", m, delimiter=",", fmt="%.17g")
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.title = "other"
    wb.active["A1"] = "notes"
    ws = wb.create_sheet("runB")
    for r in range(m.shape[0]):
        for c in range(m.shape[1]):
            ws.cell(row=r + 1, column=c + 1, value=float(m[r, c]))
    wb.save(f"{d}/lab.xlsx")

    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    doc = OpenDocumentSpreadsheet()
    t0 = Table(name="other")
    row = TableRow()
    cell = TableCell(valuetype="string")
    cell.addElement(P(text="notes"))
    row.addElement(cell)
    t0.addElement(row)
    doc.spreadsheet.addElement(t0)
    t = Table(name="runB")
    for r in range(m.shape[0]):
        row = TableRow()
        for c in range(m.shape[1]):
            row.addElement(TableCell(valuetype="float", value=repr(float(m[r, c]))))
        t.addElement(row)
    doc.spreadsheet.addElement(t)
    doc.save(f"{d}/lab.ods")

    import xlwt

    wb = xlwt.Workbook()
    wb.add_sheet("other").write(0, 0, "notes")
    ws = wb.add_sheet("runB")
    for r in range(m.shape[0]):
        for c in range(m.shape[1]):
            ws.write(r, c, float(m[r, c]))
    wb.save(f"{d}/lab.xls")


def hole(d):
    import openpyxl

    m = matrix(2, 4, 3)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "runB"
    for r in range(m.shape[0]):
        for c in range(m.shape[1]):
            ws.cell(row=r + 1, column=c + 1, value=float(m[r, c]))
    # 4 rows only for n = 2; make it 9 rows (n = 3) with C7 left empty
    for r in range(4, 9):
        for c in range(4):
            if not (r == 6 and c == 2):
                ws.cell(row=r + 1, column=c + 1, value=float(10 + r + c))
    wb.save(f"{d}/hole.xlsx")
    # A formula saved by openpyxl has no computed value stored with it.
    ws["B3"] = "=A1+A2"
    wb.save(f"{d}/formula.xlsx")


def nopovm(n):
    kets = list(np.eye(n, dtype=complex))
    for i in range(n):
        for j in range(i + 1, n):
            a = np.zeros(n, complex)
            a[i] = a[j] = 1 / np.sqrt(2)
            b = np.zeros(n, complex)
            b[i], b[j] = 1 / np.sqrt(2), -1j / np.sqrt(2)
            kets += [a, b]
    return np.array([np.outer(k, k.conj()) for k in kets])


def chi2(n, counts_path, rho_paths):
    P = nopovm(n)
    c = np.load(counts_path).astype(float)
    f = c / c[:n].sum()
    for path in rho_paths:
        rho = np.load(path)
        q = np.einsum("kab,ba->k", P, rho).real / np.trace(rho).real
        print(float(np.sum((f - q) ** 2 / np.maximum(q, 1e-12))))


if __name__ == "__main__":
    if sys.argv[1] == "hole":
        hole(sys.argv[2])
    elif sys.argv[1] == "chi2":
        chi2(int(sys.argv[2]), sys.argv[3], sys.argv[4:])
    else:
        write_all(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))

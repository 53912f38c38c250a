"""deploysim.report"""
